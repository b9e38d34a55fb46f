import Foundation
import SwitchyardCore

/// `kind: managed` providers and `engines:` (docs/CONFIG.md, docs/ENGINES.md).
extension ConfigLoader {
    static let managedKeys = [
        "command", "env", "health_path", "start_timeout", "idle_timeout", "stop_timeout", "group", "abandon_unused_load",
    ]

    static func readManaged(_ node: ConfigNode, _ fields: [String: ConfigNode]) throws(ConfigError) -> ManagedEngine {
        guard let commandNode = fields["command"] else {
            throw node.error("'command' is required for kind managed: the engine's program and arguments, with \"${PORT}\"")
        }
        var command: [String] = []
        for element in try commandNode.sequence() { command.append(try element.rawString()) }
        guard let program = command.first, !program.isEmpty else { throw commandNode.error("list the program and its arguments") }
        guard command.contains(where: { $0.contains("${PORT}") }) else {
            throw commandNode.error("no argument contains \"${PORT}\": the engine must listen on the port the gateway picks")
        }
        var engine = ManagedEngine(command: command)
        if let value = fields["env"] { engine.environment = try value.stringMap() }
        if let value = fields["health_path"] {
            let path = try value.string()
            guard path.hasPrefix("/") else { throw value.error("expected a path such as /health or /v1/models") }
            engine.healthPath = path
        }
        if let value = fields["start_timeout"] { engine.startTimeout = try positive(value) }
        if let value = fields["idle_timeout"] {
            let idle = try value.duration()
            // 0 keeps an engine loaded until an operator or a swap stops it.
            engine.idleTimeout = idle > .zero ? idle : nil
        }
        if let value = fields["stop_timeout"] { engine.stopTimeout = try positive(value) }
        if let value = fields["group"] { engine.group = try value.optionalString() }
        if let value = fields["abandon_unused_load"] { engine.abandonUnusedLoad = try value.bool() }
        return engine
    }

    static func readEngines(_ node: ConfigNode) throws(ConfigError) -> EnginesConfig {
        let fields = try node.fields(["max_running"])
        return EnginesConfig(maxRunning: try fields["max_running"]?.int(in: 1...10_000))
    }
}

extension ConfigNode {
    /// A scalar with `${VAR}` expanded but `${PORT}` kept for the gateway to fill in at each start.
    func rawString() throws(ConfigError) -> String {
        guard case .scalar(let scalar) = node else { throw error("expected a string") }
        let marker = "\u{0}PORT\u{0}"
        return try expand(scalar.string.replacingOccurrences(of: "${PORT}", with: marker))
            .replacingOccurrences(of: marker, with: "${PORT}")
    }
}
