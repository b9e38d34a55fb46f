import Foundation
import SwitchyardCore
import Testing

/// Deployments, retries before the first byte, fallbacks and cooldowns, against real local upstreams
/// that refuse connections, answer 500 or 429, stall, or die. The fake upstream scripts its behaviour
/// per upstream model id (`"fake": {"models": {"upstream-a": {...}}}`), so one request body makes one
/// deployment fail and another answer.
@Suite(.timeLimit(.minutes(2))) struct RoutingTests {
    /// `r`: `dead` (priority 0) → `fake/upstream-a` (1) → `fake/upstream-b` (2). `p`: only `dead`,
    /// falling back to `r`. `solo`: only `fake/upstream-solo`.
    static func configure(_ config: inout Config, cooldown: RoutingConfig.Cooldown = .init(failures: 3, duration: .seconds(30))) {
        config.routing = .init(
            maxAttempts: 4, deadline: .seconds(10), backoff: .milliseconds(10), maxBackoff: .milliseconds(50),
            cooldown: cooldown)
        config.models += [
            .init(
                name: "r",
                deployments: [
                    .init(provider: "dead", model: "x", priority: 0),
                    .init(provider: "fake", model: "upstream-a", priority: 1),
                    .init(provider: "fake", model: "upstream-b", priority: 2),
                ],
                price: .tokens(inputPer1K: 1_000_000, outputPer1K: 2_000_000)),
            .init(
                name: "p", deployments: [.init(provider: "dead", model: "x")], fallbacks: ["r"],
                price: .perRequest(5_000_000)),
            .init(name: "solo", deployments: [.init(provider: "fake", model: "upstream-solo")]),
        ]
    }

    /// The upstream model ids the fake upstream was asked for, in order.
    func upstreamModels(_ gateway: GatewayHarness) -> [String] {
        gateway.upstream.requests.compactMap { request in
            (try? JSONValue.parse(Array(request.body)))?["model"]?.stringValue
        }
    }

    @Test(arguments: [false, true])
    func aRefusedConnectionAndAFailingDeploymentAreSkippedForOneThatAnswers(stream: Bool) async throws {
        try await GatewayHarness.run(configure: { config, _ in Self.configure(&config) }) { gateway in
            let reply = try await gateway.post(
                "/v1/chat/completions",
                chat("r", stream: stream, extra: #""fake":{"models":{"upstream-a":{"status":500}}}"#))
            #expect(reply.status == 200)
            if stream {
                #expect(reply.events.last == "[DONE]")
                #expect(reply.chunks.allSatisfy { $0["model"] == "r" })
            } else {
                #expect(reply.json["model"] == "r")
                #expect(reply.json["choices"]?.arrayValue?.first?["message"]?["content"]?.stringValue?.isEmpty == false)
            }
            // What was tried stays out of the answer.
            #expect(!reply.text.contains("upstream-a") && !reply.text.contains("dead"))
            #expect(upstreamModels(gateway) == ["upstream-a", "upstream-b"])
            let row = try #require(try await gateway.ledger().first)
            #expect(row.status == "completed")
            #expect(row.open.deployment == "fake/upstream-b")
            #expect(row.attempts == "dead/x:connect_error,fake/upstream-a:http_500,fake/upstream-b:ok")
            #expect(row.cost > .zero)
        }
    }

    @Test func anUpstream429WithRetryAfterMovesOnAndKeepsThatDeploymentOutUntilThen() async throws {
        try await GatewayHarness.run(configure: { config, _ in Self.configure(&config) }) { gateway in
            let limited = #""fake":{"models":{"upstream-a":{"status":429,"retry_after":"2"}}}"#
            let first = try await gateway.post("/v1/chat/completions", chat("r", extra: limited))
            #expect(first.status == 200)
            #expect(upstreamModels(gateway) == ["upstream-a", "upstream-b"])
            // Within its retry-after, upstream-a is skipped even for a request it would answer.
            gateway.upstream.clearRequests()
            let second = try await gateway.post("/v1/chat/completions", chat("r"))
            #expect(second.status == 200)
            #expect(upstreamModels(gateway) == ["upstream-b"])
            let row = try #require(try await gateway.ledger().first)
            #expect(row.attempts == "dead/x:connect_error,fake/upstream-a:cooling,fake/upstream-b:ok")
            // After it, upstream-a serves again.
            try await Task.sleep(for: .milliseconds(2300))
            gateway.upstream.clearRequests()
            #expect(try await gateway.post("/v1/chat/completions", chat("r")).status == 200)
            #expect(upstreamModels(gateway) == ["upstream-a"])
        }
    }

    @Test func anUpstream429IsPassedOnWithItsRetryAfterWhenNothingElseCanServe() async throws {
        try await GatewayHarness.run(configure: { config, _ in Self.configure(&config) }) { gateway in
            let reply = try await gateway.post(
                "/v1/chat/completions", chat("solo", extra: #""fake":{"status":429,"retry_after":"7","message":"slow down"}"#))
            #expect(reply.status == 429)
            #expect(reply.header("retry-after") == "7")
            #expect(reply.json["error"]?["message"] == "slow down")
            // One attempt: nothing else could serve it, so it was not retried elsewhere.
            #expect(gateway.upstream.requests.count == 1)
            // The deployment is cooling for its retry-after, but it is the only way to serve the
            // model: the next request goes to it anyway and gets its answer, not an outage.
            let next = try await gateway.post("/v1/chat/completions", chat("solo"))
            #expect(next.status == 200)
            #expect(gateway.upstream.requests.count == 2)
        }
    }

    @Test func aSingleDeploymentThatCooledDownStillServesOnceItRecovers() async throws {
        try await GatewayHarness.run(configure: { config, _ in Self.configure(&config) }) { gateway in
            let broken = #""fake":{"status":500,"message":"upstream broke"}"#
            // Three attempts, three failures: the deployment cools down and the request ends with
            // the upstream's error.
            #expect(try await gateway.post("/v1/chat/completions", chat("solo", extra: broken)).status == 502)
            #expect(gateway.upstream.requests.count == 3)
            // Cooling now, yet a failing upstream's own error still comes through (one attempt each)...
            #expect(try await gateway.post("/v1/chat/completions", chat("solo", extra: broken)).status == 502)
            let failing = try await gateway.post("/v1/chat/completions", chat("solo", extra: broken))
            #expect(failing.status == 502 && failing.json["error"]?["code"] == "upstream_error")
            #expect(failing.json["error"]?["message"]?.stringValue?.contains("upstream broke") == true)
            // ...and the moment it recovers, so do its answers.
            #expect(try await gateway.post("/v1/chat/completions", chat("solo")).status == 200)
            #expect(gateway.upstream.requests.count == 6)
        }
    }

    @Test(arguments: [false, true])
    func anUpstreamThatStallsOrDiesBeforeItsFirstByteIsReplacedByTheNext(stream: Bool) async throws {
        try await GatewayHarness.run(configure: { config, _ in Self.configure(&config) }) { gateway in
            // The harness's first-byte timeout is 1 s.
            let stalls = #""fake":{"models":{"upstream-a":{"first_byte_delay_ms":3000}}}"#
            let start = ContinuousClock.now
            let stalled = try await gateway.post("/v1/chat/completions", chat("r", stream: stream, extra: stalls))
            #expect(stalled.status == 200)
            #expect(ContinuousClock.now - start < .seconds(3))
            let dies = #""fake":{"models":{"upstream-a":{"hang_up":true}}}"#
            let died = try await gateway.post("/v1/chat/completions", chat("r", stream: stream, extra: dies))
            #expect(died.status == 200)
            if stream { #expect(died.events.last == "[DONE]") }
            let rows = try await gateway.ledger()
            #expect(rows.map(\.attempts).contains("dead/x:connect_error,fake/upstream-a:first_byte_timeout,fake/upstream-b:ok"))
            #expect(rows.map(\.attempts).contains("dead/x:connect_error,fake/upstream-a:closed_early,fake/upstream-b:ok"))
            #expect(rows.allSatisfy { $0.status == "completed" && $0.open.deployment == "fake/upstream-b" })
        }
    }

    @Test func nothingIsRetriedOnceTheClientHasOutput() async throws {
        try await GatewayHarness.run(configure: { config, _ in Self.configure(&config) }) { gateway in
            let reply = try await gateway.post(
                "/v1/chat/completions", chat("r", stream: true, extra: #""fake":{"models":{"upstream-a":{"die_after":2}}}"#))
            #expect(reply.status == 200)
            #expect(!reply.events.contains("[DONE]"))
            let last = try JSONValue.parse(try #require(reply.events.last))
            #expect(last["error"]?["code"] == "upstream_error")
            #expect(upstreamModels(gateway) == ["upstream-a"])
            let row = try #require(try await gateway.ledger().first)
            #expect(row.status == "failed")
            #expect(row.attempts == "dead/x:connect_error,fake/upstream-a:ok")
        }
    }

    @Test func aRefusalAboutTheRequestItselfIsNotRetried() async throws {
        try await GatewayHarness.run(configure: { config, _ in Self.configure(&config) }) { gateway in
            let reply = try await gateway.post(
                "/v1/chat/completions",
                chat("r", extra: #""fake":{"models":{"upstream-a":{"status":400,"message":"bad tool schema"}}}"#))
            #expect(reply.status == 400)
            #expect(reply.json["error"]?["message"] == "bad tool schema")
            #expect(upstreamModels(gateway) == ["upstream-a"])
        }
    }

    @Test func aFallbackModelServesUnderTheNameAndPriceAskedFor() async throws {
        try await GatewayHarness.run(configure: { config, _ in Self.configure(&config) }) { gateway in
            let reply = try await gateway.post("/v1/chat/completions", chat("p"))
            #expect(reply.status == 200)
            #expect(reply.json["model"] == "p")
            #expect(upstreamModels(gateway) == ["upstream-a"])
            let row = try #require(try await gateway.ledger().first)
            #expect(row.open.model == "p")
            #expect(row.open.deployment == "fake/upstream-a")
            #expect(row.cost == Money(micros: 5000))  // p's price per request, not r's per-token price
            // dead/x serves p and r alike: one deployment, tried once in the round.
            #expect(row.attempts == "dead/x:connect_error,fake/upstream-a:ok")
        }
    }

    @Test func whenEveryDeploymentFailsTheCallerGetsOneHonestErrorAndPaysNothing() async throws {
        try await GatewayHarness.run(configure: { config, _ in Self.configure(&config) }) { gateway in
            let reply = try await gateway.post(
                "/v1/chat/completions",
                chat("r", extra: #""fake":{"models":{"upstream-a":{"status":500},"upstream-b":{"status":503}}}"#))
            #expect(reply.status == 502)
            #expect(reply.json["error"]?["type"] == "api_error")
            #expect(!reply.text.contains("connect_error"))
            let row = try #require(try await gateway.ledger().first)
            #expect(row.status == "failed" && row.cost == .zero)
            #expect(row.attempts == "dead/x:connect_error,fake/upstream-a:http_500,fake/upstream-b:http_503,dead/x:connect_error")
            let account = try await gateway.settled()
            let start = try #require(Money("1000.00"))
            #expect(account.held == .zero && account.balance == start)
        }
    }

    @Test func aFailingDeploymentCoolsDownOnTimeAndIsProbedAgainAfterwards() async throws {
        let cooldown = RoutingConfig.Cooldown(failures: 2, duration: .seconds(1))
        // Time moves only when the test says so: the cooldown's edges are exact, with no sleeping.
        let clock = ManualClock()
        try await GatewayHarness.run(clock: clock, configure: { config, _ in Self.configure(&config, cooldown: cooldown) }) {
            gateway in
            let failA = #""fake":{"models":{"upstream-a":{"status":500}}}"#
            for _ in 0..<2 {
                #expect(try await gateway.post("/v1/chat/completions", chat("r", extra: failA)).status == 200)
            }
            gateway.upstream.clearRequests()
            // Cooling: skipped, even by requests it would now answer...
            for _ in 0..<3 {
                #expect(try await gateway.post("/v1/chat/completions", chat("r")).status == 200)
            }
            clock.advance(by: .milliseconds(999))
            #expect(try await gateway.post("/v1/chat/completions", chat("r")).status == 200)
            #expect(upstreamModels(gateway) == Array(repeating: "upstream-b", count: 4))
            // ...until the cooldown has run its second: then probed and back in use.
            clock.advance(by: .milliseconds(1))
            #expect(try await gateway.post("/v1/chat/completions", chat("r")).status == 200)
            #expect(upstreamModels(gateway).last == "upstream-a")
            #expect(try await gateway.post("/v1/chat/completions", chat("r")).status == 200)
            #expect(upstreamModels(gateway).last == "upstream-a")
            let row = try #require(try await gateway.ledger().first)
            #expect(row.open.deployment == "fake/upstream-a")
        }
    }

    @Test func aProbeThatFailsCoolsTheDeploymentDownAgainAtOnce() async throws {
        let cooldown = RoutingConfig.Cooldown(failures: 2, duration: .milliseconds(800))
        try await GatewayHarness.run(configure: { config, _ in Self.configure(&config, cooldown: cooldown) }) { gateway in
            let failA = #""fake":{"models":{"upstream-a":{"status":500}}}"#
            for _ in 0..<2 { _ = try await gateway.post("/v1/chat/completions", chat("r", extra: failA)) }
            try await Task.sleep(for: .milliseconds(1000))
            gateway.upstream.clearRequests()
            #expect(try await gateway.post("/v1/chat/completions", chat("r", extra: failA)).status == 200)
            #expect(try await gateway.post("/v1/chat/completions", chat("r")).status == 200)
            // One probe of upstream-a, which failed, then upstream-a is out again.
            #expect(upstreamModels(gateway) == ["upstream-a", "upstream-b", "upstream-b"])
        }
    }

    @Test func weightsShareTrafficWithinAPriority() async throws {
        try await GatewayHarness.run(configure: { config, _ in
            config.models.append(
                .init(
                    name: "w",
                    deployments: [
                        .init(provider: "fake", model: "upstream-heavy", weight: 3),
                        .init(provider: "fake", model: "upstream-light", weight: 1),
                        .init(provider: "fake", model: "upstream-spare", priority: 1, weight: 100),
                    ]))
        }) { gateway in
            for _ in 0..<80 {
                let reply = try await gateway.post("/v1/chat/completions", chat("w"))
                #expect(reply.status == 200)
            }
            let models = upstreamModels(gateway)
            let heavy = models.filter { $0 == "upstream-heavy" }.count
            #expect(!models.contains("upstream-spare"))
            // 3:1 → 60 of 80 expected; a binomial spread of ±4σ is 45...75.
            #expect((45...75).contains(heavy), "heavy got \(heavy) of 80")
        }
    }
}
