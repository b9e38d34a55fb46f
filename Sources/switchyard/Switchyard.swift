import ArgumentParser
import Foundation
import Logging
import Metrics
import Prometheus
import SwitchyardCore
import SwitchyardServer

@main
struct Switchyard: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "switchyard",
        abstract: "An OpenAI-compatible LLM API gateway.",
        subcommands: [
            Serve.self, CheckConfig.self, Migrate.self, AccountsCommand.self, KeysCommand.self, CreditsCommand.self,
            UsageCommand.self,
        ],
        defaultSubcommand: Serve.self
    )
}

struct ConfigOption: ParsableArguments {
    @Option(name: .shortAndLong, help: "Path of the YAML configuration file.")
    var config = "switchyard.yaml"

    /// The validated config, or a message naming the bad key and line and exit code 78 (EX_CONFIG).
    func load() throws -> Config {
        do {
            return try ConfigLoader.load(path: config, environment: ProcessInfo.processInfo.environment)
        } catch {
            FileHandle.standardError.write(Data("switchyard: invalid configuration: \(error)\n".utf8))
            throw ExitCode(78)
        }
    }
}

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the gateway.")

    @OptionGroup var options: ConfigOption

    func run() async throws {
        let config = try options.load()  // LOG_LEVEL is applied there, over `log_level`
        let level = Logger.Level(rawValue: config.logLevel) ?? .info
        LoggingSystem.bootstrap { label in LineLogHandler(label: label, format: config.logFormat, level: level) }
        // One registry for the gateway's own metrics and for whatever reports through swift-metrics;
        // `GET /metrics` serves it.
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
        let logger = Logger(label: "switchyard")
        let models = config.models.map(\.name).joined(separator: ", ")
        try await serve(config: config, logger: logger, metrics: GatewayMetrics(registry: registry), announce: { line in
            FileHandle.standardOutput.write(Data("switchyard: \(line)\n".utf8))
        }) { port in
            let line = "switchyard listening on http://\(config.server.host):\(port)/v1 (models: \(models))\n"
            FileHandle.standardOutput.write(Data(line.utf8))
        }
    }
}

struct CheckConfig: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check-config", abstract: "Validate the configuration file without serving.")

    @OptionGroup var options: ConfigOption

    func run() async throws {
        let config = try options.load()
        print(
            "\(options.config): OK (\(config.providers.count) providers, \(config.models.count) models, "
                + "listening on \(config.server.host):\(config.server.port))")
    }
}
