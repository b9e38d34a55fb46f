import SwitchyardCore
import Testing

@testable import SwitchyardServer

extension ConfigLoaderTests {
    @Test func logFormatLevelAndMetricsToken() throws {
        let config = try ConfigLoader.parse(
            yaml: "log_format: json\nlog_level: debug\nmetrics_token: ${TOKEN}\n" + Self.minimal, environment: ["TOKEN": "t0k"])
        #expect(config.logFormat == .json && config.logLevel == "debug" && config.metricsToken == "t0k")
        let defaults = try ConfigLoader.parse(yaml: "metrics_token: ${UNSET}\n" + Self.minimal, environment: [:])
        #expect(defaults.logFormat == .text && defaults.logLevel == "info" && defaults.metricsToken == nil)
        #expect(error("log_format: xml\n" + Self.minimal)?.description.contains("log_format: expected text or json") == true)
    }

    @Test func logLevelFromTheEnvironmentWinsAndIsValidated() throws {
        let config = try ConfigLoader.parse(yaml: "log_level: warning\n" + Self.minimal, environment: ["LOG_LEVEL": "TRACE"])
        #expect(config.logLevel == "trace")
        #expect(error(Self.minimal, environment: ["LOG_LEVEL": "loud"])?.description.contains("LOG_LEVEL") == true)
    }
}
