import Foundation
import SwitchyardCore
import Testing

@testable import SwitchyardServer

@Suite struct ConfigLoaderTests {
    static let minimal = """
        providers:
          demo: {kind: test}
        models:
          m: {deployments: [{provider: demo}]}
        """

    func error(_ yaml: String, environment: [String: String] = [:]) -> ConfigError? {
        do {
            _ = try ConfigLoader.parse(yaml: yaml, environment: environment)
            return nil
        } catch {
            return error
        }
    }

    @Test func theExampleConfigInTheRepositoryIsValid() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let config = try ConfigLoader.load(path: root.appendingPathComponent("switchyard.yaml").path, environment: [:])
        #expect(config.server.port == 8080)
        #expect(config.adminKey == nil)
        #expect(Catalog(models: config.models).model(named: "qwen2-72b")?.name == "qwen")
    }

    @Test func defaultsAndEnvironmentExpansion() throws {
        let config = try ConfigLoader.parse(
            yaml: """
                server: {port: "${PORT:-9000}", shutdown_grace: 250ms}
                admin_key: ${ADMIN}
                providers:
                  up: {kind: openai, base_url: "http://h:1/v1", api_key: "${KEY}", timeouts: {idle: 1.5}}
                models:
                  m: {deployments: [{provider: up, model: real-m}], aliases: [a]}
                """,
            environment: ["KEY": "secret", "ADMIN": ""]
        )
        #expect(config.server.port == 9000)
        #expect(config.server.shutdownGrace == .milliseconds(250))
        #expect(config.adminKey == nil)
        #expect(config.providers[0].apiKey == "secret")
        #expect(config.providers[0].timeouts.idle == .milliseconds(1500))
        #expect(config.providers[0].timeouts.connect == .seconds(10))
        #expect(config.models[0].deployments[0].model == "real-m")
        #expect(config.database == "sqlite:switchyard.sqlite")
    }

    @Test func errorsNameTheKeyAndLine() {
        let typo = error(
            """
            providers:
              demo: {kind: test}
            models:
              m:
                contxt: 4096
                deployments: [{provider: demo}]
            """)
        #expect(typo?.key == "models.m.contxt")
        #expect(typo?.line == 5)
        #expect(typo?.description.contains("unknown key") == true)

        let badPort = error("server: {port: 70000}\n" + Self.minimal)
        #expect(badPort?.key == "server.port")
        #expect(badPort?.line == 1)

        let unknownProvider = error(
            """
            providers:
              demo: {kind: test}
            models:
              m: {deployments: [{provider: nope}]}
            """)
        #expect(unknownProvider?.key == "models.m.deployments[0].provider")

        #expect(error("providers: {p: {kind: magic}}\nmodels: {}")?.key == "providers.p.kind")
        #expect(error("providers: {p: {kind: openai, base_url: 'ftp://x'}}\nmodels: {}")?.key == "providers.p.base_url")
        #expect(error("models: {}")?.description.contains("'providers' is required") == true)
        #expect(error("providers: {d: {kind: test, token_delay: soon}}\nmodels: {}")?.key == "providers.d.token_delay")
        #expect(error("key: [unclosed")?.description.contains("YAML") == true)
    }

    @Test func aliasesMayNotCollide() {
        let clash = error(
            """
            providers: {d: {kind: test}}
            models:
              a: {deployments: [{provider: d}]}
              b: {deployments: [{provider: d}], aliases: [a]}
            """)
        #expect(clash?.key == "models.b")
    }
}
