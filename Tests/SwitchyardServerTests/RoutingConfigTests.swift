import SwitchyardCore
import Testing

@testable import SwitchyardServer

@Suite struct RoutingConfigTests {
    func error(_ yaml: String) -> ConfigError? {
        do {
            _ = try ConfigLoader.parse(yaml: yaml, environment: [:])
            return nil
        } catch {
            return error
        }
    }

    @Test func routingLimitsAndDeploymentsAreRead() throws {
        let config = try ConfigLoader.parse(
            yaml: """
                providers:
                  a: {kind: openai, base_url: "http://a:1/v1", max_connections: 8, max_queue: 16, timeouts: {total: 10m}}
                  b: {kind: openai, base_url: "http://b:1/v1"}
                models:
                  m:
                    deployments:
                      - {provider: a, model: m-a, priority: 0, weight: 3}
                      - {provider: b, model: m-b, weight: 1}
                    fallbacks: [n]
                    limits: {requests_per_minute: 60, concurrent: 4}
                  n: {deployments: [{provider: b}]}
                routing:
                  max_attempts: 5
                  deadline: 20s
                  backoff: 25ms
                  max_backoff: 400ms
                  cooldown: {failures: 2, duration: 15s}
                limits:
                  account: {requests_per_minute: 600, tokens_per_minute: 200000, concurrent: 20}
                  key: {requests_per_minute: 300}
                  end_user: {requests_per_minute: 30}
                  accounts: {acme: {requests_per_minute: 6000}}
                  keys: {key-1: {concurrent: 2}}
                """,
            environment: [:])
        let provider = try #require(config.providers.first { $0.name == "a" })
        #expect(provider.maxConnections == 8 && provider.maxQueue == 16)
        #expect(provider.timeouts.total == .seconds(600))
        #expect(config.providers.first { $0.name == "b" }?.timeouts.total == nil)
        let model = try #require(config.models.first { $0.name == "m" })
        #expect(model.deployments.map(\.id) == ["a/m-a", "b/m-b"])
        #expect(model.deployments.map(\.weight) == [3, 1])
        #expect(model.fallbacks == ["n"])
        #expect(model.limits == .init(requestsPerMinute: 60, concurrent: 4))
        #expect(
            config.routing
                == .init(
                    maxAttempts: 5, deadline: .seconds(20), backoff: .milliseconds(25), maxBackoff: .milliseconds(400),
                    cooldown: .init(failures: 2, duration: .seconds(15))))
        #expect(config.limits.account == .init(requestsPerMinute: 600, tokensPerMinute: 200_000, concurrent: 20))
        #expect(config.limits.endUserRequestsPerMinute == 30)
        #expect(config.limits.account.overridden(by: config.limits.accounts["acme"]).requestsPerMinute == 6000)
        #expect(config.limits.account.overridden(by: config.limits.accounts["acme"]).concurrent == 20)
        #expect(config.limits.keys["key-1"]?.concurrent == 2)
    }

    @Test func mistakesAreNamedWithTheirKey() {
        let base = """
            providers:
              a: {kind: openai, base_url: "http://a:1/v1"}
              t: {kind: test}
            models:
            """
        let cases: [(String, String)] = [
            ("  m: {deployments: [{provider: a}], fallbacks: [nope]}", "models.m.fallbacks"),
            ("  m: {deployments: [{provider: a}], fallbacks: [m]}", "models.m.fallbacks"),
            ("  m: {deployments: [{provider: a, weight: 0}]}", "models.m.deployments[0].weight"),
            ("  m: {deployments: [{provider: a}, {provider: a}]}", "models.m.deployments[1]"),
            ("  m: {deployments: [{provider: a}], limits: {tokens_per_minute: 5}}", "models.m.limits.tokens_per_minute"),
            ("  m: {deployments: [{provider: a}]}\nrouting: {cooldown: {failures: 0}}", "routing.cooldown.failures"),
            ("  m: {deployments: [{provider: a}]}\nlimits: {end_user: {concurrent: 3}}", "limits.end_user.concurrent"),
            ("  m: {deployments: [{provider: t}]}\nproviders2: 1", "providers2"),
        ]
        for (models, key) in cases {
            let error = self.error(base + "\n" + models)
            #expect(error?.key == key, "\(models) → \(String(describing: error))")
        }
        #expect(error(base.replacingOccurrences(of: "{kind: test}", with: "{kind: test, max_queue: 3}") + "\n  m: {deployments: [{provider: t}]}")?.key == "providers.t.max_queue")
    }
}
