/// How the gateway runs an engine process of a `managed` provider (docs/ENGINES.md).
public struct ManagedEngine: Sendable, Equatable {
    /// The program and its arguments; `${PORT}` in any of them is the port the gateway picked.
    public var command: [String]
    /// Added to (or replacing in) the gateway's own environment.
    public var environment: [String: String]
    /// Polled with GET until it answers 200; then the engine is ready.
    public var healthPath: String
    /// From spawning to the first 200 on `healthPath`; past it the waiting requests fail (503).
    public var startTimeout: Duration
    /// A ready engine with nothing in flight or waiting for this long is stopped; nil = never.
    public var idleTimeout: Duration?
    /// From SIGTERM to the process group until SIGKILL.
    public var stopTimeout: Duration
    /// Engines of one group never run at the same time (one GPU, say).
    public var group: String?
    /// When every request waiting for a load has gone, stop loading (unless an operator asked for it).
    public var abandonUnusedLoad: Bool

    public init(
        command: [String], environment: [String: String] = [:], healthPath: String = "/v1/models",
        startTimeout: Duration = .seconds(300), idleTimeout: Duration? = .seconds(600),
        stopTimeout: Duration = .seconds(10), group: String? = nil, abandonUnusedLoad: Bool = true
    ) {
        self.command = command
        self.environment = environment
        self.healthPath = healthPath
        self.startTimeout = startTimeout
        self.idleTimeout = idleTimeout
        self.stopTimeout = stopTimeout
        self.group = group
        self.abandonUnusedLoad = abandonUnusedLoad
    }

    /// The command with `${PORT}` replaced.
    public func arguments(port: Int) -> [String] {
        command.map { $0.replacing("${PORT}", with: String(port)) }
    }
}

/// `engines:`, what applies across every managed engine.
public struct EnginesConfig: Sendable, Equatable {
    /// Engine processes alive at once at most (starting, ready or stopping); nil = no limit. When a
    /// start needs a slot, the least recently used idle engine is stopped.
    public var maxRunning: Int?

    public init(maxRunning: Int? = nil) {
        self.maxRunning = maxRunning
    }
}
