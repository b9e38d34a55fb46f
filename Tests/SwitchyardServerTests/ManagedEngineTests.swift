import Foundation
import SwitchyardCore
import Testing

/// Managed engines against real processes: the fake upstream binary started, swapped, stopped and
/// crashed by the gateway. Serialized: each test starts processes and measures their timing.
@Suite(.serialized, .timeLimit(.minutes(1))) struct ManagedEngineTests {
    /// The engines as `GET /admin/v1/engines` lists them, by name.
    static func engines(_ gateway: GatewayHarness) async throws -> [String: JSONValue] {
        let reply = try await gateway.get("/admin/v1/engines", auth: gateway.adminKey)
        #expect(reply.status == 200)
        var byName: [String: JSONValue] = [:]
        for engine in reply.json["data"]?.arrayValue ?? [] {
            if let name = engine["name"]?.stringValue { byName[name] = engine }
        }
        return byName
    }

    static func state(_ gateway: GatewayHarness, _ name: String) async throws -> String? {
        try await engines(gateway)[name]?["state"]?.stringValue
    }

    @Test func theFirstRequestLoadsTheEngineUnbilledAndTheSecondIsWarm() async throws {
        try await GatewayHarness.run(configure: { config, _ in
            FakeEngine.add([FakeEngine.provider("e", startupDelayMs: 500)], to: &config)
            config.models[config.models.count - 1].price = .perSecond(1_000_000_000)
        }) { gateway in
            let cold = try await gateway.post("/v1/chat/completions", chat("model-e"))
            #expect(cold.status == 200)
            let warm = try await gateway.post("/v1/chat/completions", chat("model-e", stream: true))
            #expect(warm.status == 200 && warm.events.last == "[DONE]")
            _ = try await gateway.settled()
            let rows = try await gateway.ledger()
            let (second, first) = (rows[0], rows[1])
            let load = try #require(first.loadMillis)
            print("managed engine: load_ms of the first request with a 500 ms startup delay: \(load)")
            #expect(load >= 500 && load < 5000)
            // Per-second price: only generation is billed, not the load.
            #expect(first.cost == Money(micros: (first.generationMillis ?? 0) * 1000))
            #expect(first.cost < Money(micros: 400_000))
            #expect((second.loadMillis ?? 0) == 0)
            let engine = try #require(try await Self.engines(gateway)["e"])
            #expect(engine["state"]?.stringValue == "ready")
            #expect(engine["loads"]?.intValue == 1)
            #expect(engine["models"]?.arrayValue?.compactMap(\.stringValue) == ["model-e"])
            #expect((engine["last_load_ms"]?.intValue ?? 0) >= 500)
            #expect(engine["pid"]?.intValue.map { FakeEngine.isAlive(Int32($0)) } == true)
            let metrics = try await gateway.get("/metrics", auth: nil).text
            #expect(metrics.contains(#"switchyard_engine_state{engine="e",state="ready"} 1"#))
            #expect(metrics.contains(#"switchyard_engine_loads_total{engine="e"} 1"#))
        }
    }

    @Test func anIdleEngineIsStoppedAfterItsIdleTimeout() async throws {
        try await GatewayHarness.run(configure: { config, _ in
            FakeEngine.add([FakeEngine.provider("e", idle: .milliseconds(300))], to: &config)
        }) { gateway in
            #expect(try await gateway.post("/v1/chat/completions", chat("model-e")).status == 200)
            let pid = try #require(try await Self.engines(gateway)["e"]?["pid"]?.intValue)
            #expect(try await FakeEngine.eventually { try await Self.state(gateway, "e") == "stopped" })
            #expect(!FakeEngine.isAlive(Int32(pid)))
        }
    }

    @Test func aSwapWithinAGroupWaitsForTheRequestInFlight() async throws {
        try await GatewayHarness.run(configure: { config, _ in
            FakeEngine.add(
                [FakeEngine.provider("a", group: "gpu", delayMs: 150), FakeEngine.provider("b", group: "gpu")], to: &config)
        }) { gateway in
            #expect(try await gateway.post("/v1/chat/completions", chat("model-a")).status == 200)
            // A slow stream on a (4 chunks, 150 ms apart); b is asked for while it runs.
            let slow = Task { try await gateway.post("/v1/chat/completions", chat("model-a", stream: true)) }
            #expect(await FakeEngine.eventually { (try? await Self.engines(gateway)["a"]?["requests_in_flight"]?.intValue) == 1 })
            let swapped = try await gateway.post("/v1/chat/completions", chat("model-b"))
            let finishedSlow = try await slow.value
            #expect(finishedSlow.status == 200 && finishedSlow.events.last == "[DONE]")
            #expect(swapped.status == 200)
            let engines = try await Self.engines(gateway)
            #expect(engines["a"]?["state"]?.stringValue == "stopped")
            #expect(engines["b"]?["state"]?.stringValue == "ready")
            let rows = try await gateway.ledger()
            // b's request waited for a's stream and b's load; a's stream ended first, whole.
            let bRow = try #require(rows.first { $0.open.model == "model-b" })
            #expect((bRow.loadMillis ?? 0) >= 300)
            #expect(rows.filter { $0.open.model == "model-a" }.allSatisfy { $0.status == "completed" })
        }
    }

    @Test func atMaxRunningTheLeastRecentlyUsedIdleEngineStops() async throws {
        try await GatewayHarness.run(configure: { config, _ in
            FakeEngine.add([FakeEngine.provider("a"), FakeEngine.provider("b")], to: &config, maxRunning: 1)
        }) { gateway in
            #expect(try await gateway.post("/v1/chat/completions", chat("model-a")).status == 200)
            #expect(try await gateway.post("/v1/chat/completions", chat("model-b")).status == 200)
            let engines = try await Self.engines(gateway)
            #expect(engines["a"]?["state"]?.stringValue == "stopped")
            #expect(engines["b"]?["state"]?.stringValue == "ready")
        }
    }

    @Test func aStartThatTimesOutFailsTheWaitingRequestsWith503AndBillsNothing() async throws {
        try await GatewayHarness.run(configure: { config, _ in
            FakeEngine.add([FakeEngine.provider("e", startupDelayMs: 5000, startTimeout: .milliseconds(400))], to: &config)
        }) { gateway in
            async let first = gateway.post("/v1/chat/completions", chat("model-e"))
            async let second = gateway.post("/v1/chat/completions", chat("model-e", stream: true))
            let (whole, stream) = try await (first, second)
            #expect(whole.status == 503)
            #expect(whole.json["error"]?["code"]?.stringValue == "engine_unavailable")
            // The streaming client got its stream at once (and `: loading` comments) while it
            // waited, so the failure is its last event, never a clean [DONE].
            #expect(stream.status == 200)
            #expect(stream.chunks.last?["error"]?["code"]?.stringValue == "engine_unavailable")
            #expect(!stream.events.contains("[DONE]"))
            let account = try await gateway.settled()
            #expect(account.held == .zero)
            #expect(try await gateway.ledger().allSatisfy { $0.cost == .zero && $0.status == "failed" })
            #expect(try await Self.engines(gateway)["e"]?["crashes"]?.intValue == 1)
        }
    }

    @Test func aCrashWhileServingFailsThatRequestAndTheNextRestartsTheEngine() async throws {
        try await GatewayHarness.run(configure: { config, _ in
            FakeEngine.add([FakeEngine.provider("e", delayMs: 20)], to: &config)
        }) { gateway in
            let crashed = try await gateway.post(
                "/v1/chat/completions", chat("model-e", stream: true, extra: #""fake":{"crash_after":1}"#))
            #expect(crashed.status == 200)
            #expect(crashed.events.last != "[DONE]")
            #expect(crashed.chunks.last?["error"] != nil)
            #expect(try await FakeEngine.eventually { try await Self.state(gateway, "e") == "crashed" })
            let next = try await gateway.post("/v1/chat/completions", chat("model-e"))
            #expect(next.status == 200)
            let engine = try #require(try await Self.engines(gateway)["e"])
            #expect(engine["crashes"]?.intValue == 1 && engine["loads"]?.intValue == 2)
            #expect((try await gateway.ledger().first?.loadMillis ?? 0) > 0)
        }
    }

    @Test func pastMaxQueueARequestWaitingForTheLoadIsRefusedWith503() async throws {
        try await GatewayHarness.run(configure: { config, _ in
            FakeEngine.add([FakeEngine.provider("e", startupDelayMs: 800, maxQueue: 1)], to: &config)
        }) { gateway in
            let first = Task { try await gateway.post("/v1/chat/completions", chat("model-e")) }
            #expect(await FakeEngine.eventually { (try? await Self.engines(gateway)["e"]?["requests_waiting"]?.intValue) == 1 })
            let refused = try await gateway.post("/v1/chat/completions", chat("model-e"))
            #expect(refused.status == 503)
            #expect(refused.json["error"]?["code"]?.stringValue == "upstream_overloaded")
            #expect(try await first.value.status == 200)
        }
    }

    @Test func aClientWhoLeavesWhileWaitingPaysNothingAndTheLoadIsAbandoned() async throws {
        try await GatewayHarness.run(configure: { config, _ in
            FakeEngine.add([FakeEngine.provider("e", startupDelayMs: 3000)], to: &config)
            config.models[config.models.count - 1].price = .perSecond(1_000_000_000)
        }) { gateway in
            let call = Task { try await gateway.post("/v1/chat/completions", chat("model-e", stream: true)) }
            #expect(try await FakeEngine.eventually { try await gateway.account.held > .zero })
            #expect(await FakeEngine.eventually { (try? await Self.engines(gateway)["e"]?["requests_waiting"]?.intValue) == 1 })
            call.cancel()
            #expect(try await FakeEngine.eventually { try await gateway.account.held == .zero })
            let row = try #require(try await gateway.ledger().first)
            #expect(row.status == "client_closed" && row.cost == .zero)
            // Nobody waits any more: the load is abandoned (SIGTERM, SIGKILL after stop_timeout).
            #expect(try await FakeEngine.eventually { try await Self.state(gateway, "e") == "stopped" })
        }
    }

    @Test func anOperatorStartsAndStopsAnEngineWithTheAdminKey() async throws {
        try await GatewayHarness.run(configure: { config, _ in
            FakeEngine.add([FakeEngine.provider("e")], to: &config)
        }) { gateway throws in
            #expect(try await gateway.post("/admin/v1/engines/e/start", "", auth: nil).status == 401)
            #expect(try await gateway.post("/admin/v1/engines/nope/start", "", auth: gateway.adminKey).status == 404)
            #expect(try await gateway.post("/admin/v1/engines/e/start", "", auth: gateway.adminKey).status == 202)
            #expect(try await FakeEngine.eventually { try await Self.state(gateway, "e") == "ready" })
            // Loaded ahead of time: the first request is warm.
            #expect(try await gateway.post("/v1/chat/completions", chat("model-e")).status == 200)
            #expect((try await gateway.ledger().first?.loadMillis ?? 0) == 0)
            #expect(try await gateway.post("/admin/v1/engines/e/stop", "", auth: gateway.adminKey).status == 202)
            #expect(try await FakeEngine.eventually { try await Self.state(gateway, "e") == "stopped" })
            // Idle engines do not make the gateway unready.
            #expect(try await gateway.get("/ready", auth: nil).status == 200)
        }
    }
}
