import Logging
import SwitchyardCore
import SwitchyardUpstream
import Synchronization
import Testing

/// A provider that must get ready before it serves (as a managed engine loads): the built-in test
/// model behind a `prepare` that takes `delay` (or fails the first `failures` times).
final class PreparingProvider: Provider {
    let inner: any Provider
    let delay: Duration
    let failures: Mutex<Int>
    /// Whether it says it is ready before preparing (a warm engine) or not (one that must load).
    let ready: Bool

    init(inner: any Provider, delay: Duration, failures: Int, ready: Bool = true) {
        self.inner = inner
        self.delay = delay
        self.failures = Mutex(failures)
        self.ready = ready
    }

    var config: ProviderConfig { inner.config }
    var prepares: Bool { true }
    var isReady: Bool { ready }

    func prepare(logger: Logger) async throws -> Duration {
        let failing = failures.withLock { count -> Bool in
            guard count > 0 else { return false }
            count -= 1
            return true
        }
        if failing { throw UpstreamError.connectFailed }
        try await Task.sleep(for: delay)
        return delay
    }

    func send(_ request: UpstreamRequest, logger: Logger) async throws -> UpstreamResponse {
        try await inner.send(request, logger: logger)
    }
}

@Suite(.timeLimit(.minutes(1))) struct PrepareTests {
    static func factory(delay: Duration, failures: Int = 0, ready: Bool = true) -> ProviderFactory {
        var factory = ProviderFactory.standard
        factory.makers[.test] = { config, _ in
            PreparingProvider(inner: TestProvider(config: config), delay: delay, failures: failures, ready: ready)
        }
        return factory
    }

    static func perSecondDemo(_ config: inout Config) {
        config.models.append(
            .init(name: "demo-sec", deployments: [.init(provider: "demo", model: "demo")], price: .perSecond(1_000_000_000)))
    }

    @Test(arguments: [false, true])
    func loadTimeIsRecordedApartAndNeverBilled(stream: Bool) async throws {
        try await GatewayHarness.run(
            providerFactory: Self.factory(delay: .milliseconds(400)), configure: { config, _ in Self.perSecondDemo(&config) }
        ) { gateway in
            let reply = try await gateway.post("/v1/chat/completions", chat("demo-sec", stream: stream))
            #expect(reply.status == 200)
            _ = try await gateway.settled()
            let row = try #require(try await gateway.ledger().first)
            #expect(row.status == "completed")
            #expect((row.loadMillis ?? 0) >= 400)
            // Queueing is what the gateway spent before the upstream, load excluded.
            #expect((row.queueMillis ?? .max) < 200)
            // 1.00 per second of generation: a few milliseconds of the test model, not the 0.4 s load.
            let generation = try #require(row.generationMillis)
            #expect(generation < 300)
            #expect(row.cost == Money(micros: generation * 1000))
            // The request log line says it too (written once the response is done).
            let deadline = ContinuousClock.now + .seconds(5)
            func loggedLoad() -> Double? {
                gateway.logs.requests.compactMap { line -> Double? in
                    guard case .number(let text)? = line["load_ms"] else { return nil }
                    return Double(text)
                }.first
            }
            while loggedLoad() == nil, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(10)) }
            #expect((loggedLoad() ?? 0) >= 400)
        }
    }

    @Test func aProviderThatCannotGetReadyIsAFailedAttemptLikeAnyOther() async throws {
        try await GatewayHarness.run(
            providerFactory: Self.factory(delay: .zero, failures: 1),
            configure: { config, _ in
                config.routing = .init(maxAttempts: 2, backoff: .milliseconds(1), cooldown: .init(failures: 100))
            }
        ) { gateway in
            let reply = try await gateway.post("/v1/chat/completions", chat("demo"))
            #expect(reply.status == 200)
            let row = try #require(try await gateway.ledger().first)
            #expect(row.attempts == "demo/demo:connect_error,demo/demo:ok")
        }
    }

    /// `ready: false` is a streaming client that already got its stream and `: loading` comments.
    @Test(arguments: [true, false])
    func aCallerWhoLeavesWhileTheProviderPreparesPaysNothing(ready: Bool) async throws {
        try await GatewayHarness.run(
            providerFactory: Self.factory(delay: .seconds(30), ready: ready),
            configure: { config, _ in Self.perSecondDemo(&config) }
        ) { gateway in
            let call = Task { try await gateway.post("/v1/chat/completions", chat("demo-sec", stream: true)) }
            // The hold is open while the provider prepares.
            let deadline = ContinuousClock.now + .seconds(5)
            while try await gateway.account.held == .zero, ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(10))
            }
            call.cancel()
            let account = try await gateway.settled()
            #expect(account.held == .zero)
            let row = try #require(try await gateway.ledger().first)
            #expect(row.status == "client_closed" && row.cost == .zero)
        }
    }

    // MARK: a streaming client waiting for a load

    @Test func aStreamingClientWaitingForALoadGetsItsStreamAndLoadingCommentsAtOnce() async throws {
        try await GatewayHarness.run(
            providerFactory: Self.factory(delay: .milliseconds(700), ready: false),
            configure: { config, _ in
                Self.perSecondDemo(&config)
                config.server.loadingNoticeInterval = .milliseconds(200)
            }
        ) { gateway in
            let reply = try await gateway.post("/v1/chat/completions", chat("demo-sec", stream: true))
            #expect(reply.status == 200)
            let comments = reply.text.components(separatedBy: ": loading demo-sec\n\n").count - 1
            #expect(comments >= 2)
            #expect(reply.events.last == "[DONE]")
            #expect(reply.chunks.contains { $0["choices"]?.arrayValue?.first?["delta"]?["content"]?.stringValue?.isEmpty == false })
            _ = try await gateway.settled()
            let row = try #require(try await gateway.ledger().first)
            #expect(row.status == "completed" && (row.loadMillis ?? 0) >= 700)
            #expect(row.cost == Money(micros: (row.generationMillis ?? 0) * 1000))
            #expect(row.open.deployment == "demo/demo")
        }
    }

    @Test func aLoadThatFailsAfterTheStreamBeganEndsItWithAnErrorEventAndCostsNothing() async throws {
        try await GatewayHarness.run(
            providerFactory: Self.factory(delay: .zero, failures: 1, ready: false),
            configure: { config, _ in Self.perSecondDemo(&config) }
        ) { gateway in
            let reply = try await gateway.post("/v1/chat/completions", chat("demo-sec", stream: true))
            #expect(reply.status == 200)
            #expect(reply.chunks.last?["error"]?["code"] == "upstream_unreachable")
            #expect(!reply.events.contains("[DONE]"))
            _ = try await gateway.settled()
            let row = try #require(try await gateway.ledger().first)
            #expect(row.status == "failed" && row.cost == .zero)
        }
    }
}
