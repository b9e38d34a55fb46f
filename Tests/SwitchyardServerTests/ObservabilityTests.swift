import AsyncHTTPClient
import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import NIOPosix
import SwitchyardCore
import SwitchyardStore
import Testing

@testable import SwitchyardServer

/// What an operator sees: the request id, one log line per request, `/metrics`, `/health`, `/ready`.
@Suite(.timeLimit(.minutes(2))) struct ObservabilityTests {
    @Test func everyResponseCarriesARequestIDAndACallersValidOneIsKept() async throws {
        try await GatewayHarness.run { gateway in
            let generated = try await gateway.post("/v1/chat/completions", chat("m"))
            let id = try #require(generated.header("x-request-id"))
            #expect(id.hasPrefix("req_") && id.count == 36)
            #expect(try await gateway.get("/v1/models").header("x-request-id") != id)

            for own in ["client-7f3a_01:retry.2", "4bf92f3577b34da6a3ce929d0e0e4736", String(repeating: "a", count: 128)] {
                let reply = try await send(gateway, requestID: own)
                #expect(reply.status == 200)
                #expect(reply.header("x-request-id") == own)
                #expect(try await gateway.logs.request(own)["status"]?.intValue == 200)
            }
            // Too long, spaces, quotes, or anything that could forge a log line: replaced, not refused.
            for hostile in [String(repeating: "a", count: 129), "a b", "x\"y", "id=1 level=error", "<script>", "é"] {
                let reply = try await send(gateway, requestID: hostile)
                #expect(reply.status == 200)
                let replaced = try #require(reply.header("x-request-id"))
                #expect(replaced != hostile && replaced.hasPrefix("req_"))
            }
            // Errors carry it too.
            let refused = try await gateway.post("/v1/chat/completions", chat("m"), auth: nil)
            #expect(refused.status == 401 && refused.header("x-request-id")?.hasPrefix("req_") == true)
        }
    }

    func send(_ gateway: GatewayHarness, requestID: String) async throws -> GatewayHarness.Reply {
        var request = gateway.request(chat("m"))
        request.headers.add(name: "x-request-id", value: requestID)
        return try await gateway.execute(request)
    }

    @Test func eachRequestLeavesOneLineWithItsAccountModelTokensCostAndTimings() async throws {
        try await GatewayHarness.run { gateway in
            let whole = try await gateway.post("/v1/chat/completions", chat("m", extra: #""user":"alice","fake":{"tokens":5}"#))
            let stream = try await gateway.post(
                "/v1/chat/completions", chat("m", stream: true, extra: #""user":"bob","fake":{"tokens":7}"#))
            #expect(whole.status == 200 && stream.status == 200)
            let rows = try await gateway.ledger()
            for (reply, user, tokens) in [(whole, "alice", 5), (stream, "bob", 7)] {
                let id = try #require(reply.header("x-request-id"))
                let line = try await gateway.logs.request(id)
                let responseID = try #require(line["response_id"]?.stringValue)
                let row = try #require(rows.first { $0.open.requestID == responseID })
                #expect(line["level"]?.stringValue == "info")
                #expect(line["method"]?.stringValue == "POST" && line["path"]?.stringValue == "/v1/chat/completions")
                #expect(line["status"]?.intValue == 200)
                #expect(line["account"]?.stringValue == gateway.accountID)
                #expect(line["key_id"]?.stringValue == row.open.keyID)
                #expect(line["end_user"]?.stringValue == user)
                #expect(line["model"]?.stringValue == "m")
                #expect(line["deployment"]?.stringValue == "fake/upstream-m")
                #expect(line["outcome"]?.stringValue == "completed" && line["end_reason"]?.stringValue == "stop")
                #expect(line["completion_tokens"]?.intValue == tokens)
                #expect(line["prompt_tokens"]?.intValue == row.promptTokens)
                #expect(line["cost"]?.stringValue == row.cost.description)
                for timing in ["duration_ms", "overhead_ms", "first_token_ms", "generation_ms"] {
                    #expect((line[timing]?.doubleValue ?? -1) >= 0, "\(timing)")
                }
            }
            #expect(whole.json["id"]?.stringValue != nil)
            #expect(gateway.logs.requests.count == 2)
            // The key is never logged, whatever the line.
            #expect(!gateway.logs.all.contains { $0.contains(gateway.key) })
        }
    }

    @Test func refusalsAreLoggedAndCountedWithTheirReason() async throws {
        try await GatewayHarness.run(balance: "0.000010") { gateway in
            let unauthenticated = try await gateway.post("/v1/chat/completions", chat("m"), auth: nil)
            let poor = try await gateway.post("/v1/chat/completions", chat("m", extra: #""max_tokens":1000"#))
            let unknown = try await gateway.post("/v1/chat/completions", chat("nope"))
            #expect(unauthenticated.status == 401 && poor.status == 402 && unknown.status == 404)

            let line = try await gateway.logs.request(try #require(poor.header("x-request-id")))
            #expect(line["status"]?.intValue == 402 && line["end_reason"]?.stringValue == "insufficient_quota")
            #expect(line["outcome"]?.stringValue == "refused")
            #expect(line["account"]?.stringValue == gateway.accountID && line["model"]?.stringValue == "m")
            let anonymous = try await gateway.logs.request(try #require(unauthenticated.header("x-request-id")))
            #expect(anonymous["end_reason"]?.stringValue == "invalid_api_key" && anonymous["account"] == nil)

            let metrics = try await scrape(gateway)
            #expect(metrics.value("switchyard_balance_refusals_total", ["model": "m"]) == 1)
            #expect(metrics.value("switchyard_requests_total", ["status": "402", "end_reason": "insufficient_quota"]) == 1)
            #expect(metrics.value("switchyard_requests_total", ["status": "401", "end_reason": "invalid_api_key"]) == 1)
            #expect(metrics.value("switchyard_requests_total", ["status": "404", "end_reason": "model_not_found"]) == 1)
        }
    }

    @Test func metricsShowTrafficTokensCostTimingsAndUpstreamErrors() async throws {
        try await GatewayHarness.run { gateway in
            _ = try await gateway.post("/v1/chat/completions", chat("m", extra: #""fake":{"tokens":5}"#))
            _ = try await gateway.post("/v1/chat/completions", chat("m", stream: true, extra: #""fake":{"tokens":9}"#))
            _ = try await gateway.post("/v1/chat/completions", chat("m-dead"))
            _ = try await gateway.post("/v1/chat/completions", chat("m", extra: #""fake":{"status":500}"#))
            _ = try await gateway.settled()
            let rows = try await gateway.ledger()
            let metrics = try await scrape(gateway)
            let chatM = ["gen_ai_operation_name": "chat", "gen_ai_request_model": "m"]

            #expect(metrics.value("switchyard_requests_total", ["model": "m", "status": "200", "end_reason": "stop"]) == 2)
            #expect(metrics.value("switchyard_requests_total", ["model": "m-dead", "status": "502"]) == 1)
            #expect(metrics.value("gen_ai_client_token_usage_sum", chatM.merging(["gen_ai_token_type": "output"]) { $1 }) == 14)
            let prompt = rows.filter { $0.status == "completed" }.reduce(0) { $0 + $1.promptTokens }
            #expect(metrics.value("gen_ai_client_token_usage_sum", chatM.merging(["gen_ai_token_type": "input"]) { $1 }) == Double(prompt))
            let cost = Double(rows.reduce(Money.zero) { $0 + $1.cost }.micros) / 1_000_000
            #expect(abs((metrics.value("switchyard_cost_total", ["model": "m"]) ?? 0) - cost) < 1e-9)
            #expect(metrics.value("gen_ai_server_time_to_first_token_seconds_count", chatM) == 1)  // the stream
            #expect(metrics.value("gen_ai_server_request_duration_seconds_count", chatM) == 3)
            #expect((metrics.value("switchyard_gateway_overhead_seconds_count") ?? 0) >= 3)
            #expect(metrics.value("switchyard_upstream_errors_total", ["deployment": "dead/x", "error_type": "unreachable"]) == 1)
            #expect(metrics.value("switchyard_upstream_errors_total", ["deployment": "fake/upstream-m", "error_type": "error"]) == 1)
            #expect(metrics.value("switchyard_active_holds") == 0 && metrics.value("switchyard_held_amount") == 0)
            #expect(metrics.value("switchyard_requests_in_flight") == 0 && metrics.value("switchyard_open_streams") == 0)
        }
    }

    @Test func inFlightRequestsOpenStreamsAndHoldsAreGauges() async throws {
        try await GatewayHarness.run { gateway in
            let stream = StopTests.OpenStream(
                gateway, gateway.request(chat("m", stream: true, extra: #""fake":{"tokens":200,"delay_ms":20}"#)))
            try await stream.waitForContent(2)
            let during = try await scrape(gateway)
            #expect(during.value("switchyard_requests_in_flight") == 1)
            #expect(during.value("switchyard_open_streams") == 1)
            #expect(during.value("switchyard_active_holds") == 1 && (during.value("switchyard_held_amount") ?? 0) > 0)
            stream.task.cancel()
            _ = try await gateway.settled()
            let deadline = ContinuousClock.now + .seconds(5)
            var after = try await scrape(gateway)
            while after.value("switchyard_open_streams") != 0 && ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(10))
                after = try await scrape(gateway)
            }
            #expect(after.value("switchyard_requests_in_flight") == 0 && after.value("switchyard_open_streams") == 0)
            #expect(after.value("switchyard_active_holds") == 0)
            #expect(after.value("switchyard_requests_total", ["end_reason": "client_closed"]) == 1)
        }
    }

    @Test func anUnknownURLEchoesItsPathWithTheKeyMaskedAndIsLoggedSo() async throws {
        try await GatewayHarness.run { gateway in
            let reply = try await gateway.post("/llm_api/\(gateway.key)/alice/m/v1/nope", "{}", auth: nil)
            #expect(reply.status == 404 && reply.json["error"]?["code"]?.stringValue == "unknown_url")
            #expect(reply.text.contains("/llm_api/***/alice/m/v1/nope") && !reply.text.contains(gateway.key))
            let line = try await gateway.logs.request(try #require(reply.header("x-request-id")))
            #expect(line["path"]?.stringValue == "/llm_api/***/alice/m/v1/nope")
            let balance = try await gateway.get("/api_user/info?openid=\(gateway.key)&type=json", auth: nil)
            #expect(balance.status == 200)
            let balanceLine = try await gateway.logs.request(try #require(balance.header("x-request-id")))
            #expect(balanceLine["path"]?.stringValue == "/api_user/info?openid=***&type=json")
            #expect(!gateway.logs.all.contains { $0.contains(gateway.key) })
        }
    }

    @Test func metricsCanBeBehindAToken() async throws {
        try await GatewayHarness.run(configure: { config, _ in config.metricsToken = "scrape-me" }) { gateway in
            let none = try await gateway.get("/metrics", auth: nil)
            #expect(none.status == 401 && none.json["error"]?["code"]?.stringValue == "invalid_api_key")
            #expect(try await gateway.get("/metrics", auth: gateway.key).status == 401)
            let scraped = try await gateway.get("/metrics", auth: "scrape-me")
            #expect(scraped.status == 200 && scraped.text.contains("# TYPE switchyard_requests_in_flight gauge"))
        }
    }

    @Test func healthAndReadinessAnswerAndTheLogsStayQuietAboutProbes() async throws {
        try await GatewayHarness.run { gateway in
            let health = try await gateway.get("/health", auth: nil)
            #expect(health.status == 200 && health.json["status"]?.stringValue == "ok")
            let ready = try await gateway.get("/ready", auth: nil)
            #expect(ready.status == 200 && ready.json["status"]?.stringValue == "ready")
            #expect(ready.json["checks"]?["database"]?.stringValue == "ok")
            _ = try await gateway.get("/metrics", auth: nil)
            #expect(gateway.logs.requests.isEmpty)  // probes log at debug
        }
    }

    @Test func readinessFailsWhenTheDatabaseIsGone() async throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("switchyard-\(UUID().uuidString).sqlite").path
        let store = try await SQLBillingStore.open(url: "sqlite:\(path)", logger: Logger(label: "test"), eventLoopGroup: MultiThreadedEventLoopGroup.singleton)
        try await store.migrate()
        await store.close()
        defer { for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) } }
        let router = Router(context: GatewayRequestContext.self)
        OperationsController(store: store, lifecycle: GatewayLifecycle(), metrics: GatewayMetrics(), metricsDigest: nil)
            .addRoutes(to: router)
        try await Application(router: router).test(.router) { client in
            try await client.execute(uri: "/ready", method: .get) { response in
                #expect(response.status == .serviceUnavailable)
                let body = try JSONValue.parse(Array(response.body.readableBytesView))
                #expect(body["checks"]?["database"]?.stringValue == "unreachable")
            }
            try await client.execute(uri: "/health", method: .get) { response in #expect(response.status == .ok) }
        }
    }

    func scrape(_ gateway: GatewayHarness) async throws -> PrometheusText {
        let reply = try await gateway.get("/metrics", auth: nil)
        #expect(reply.status == 200)
        return PrometheusText(reply.text)
    }
}

extension JSONValue {
    var doubleValue: Double? {
        guard case .number(let text) = self else { return nil }
        return Double(text)
    }
}
