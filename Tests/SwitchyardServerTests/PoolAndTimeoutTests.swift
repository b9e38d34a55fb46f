import AsyncHTTPClient
import SwitchyardCore
import Testing

/// The bounded upstream pool and its queue, and the total timeout.
@Suite(.timeLimit(.minutes(2))) struct PoolAndTimeoutTests {
    @Test func aBurstBeyondThePoolAndItsQueueIsRefusedWith503() async throws {
        try await GatewayHarness.run(configure: { config, _ in
            let timeouts = ProviderConfig.Timeouts(connect: .seconds(1), firstByte: .seconds(5), idle: .seconds(2))
            config.providers.append(
                .init(name: "narrow", kind: .openai, baseURL: config.providers[0].baseURL, timeouts: timeouts,
                      maxConnections: 1, maxQueue: 1))
            config.models.append(.init(name: "narrow", deployments: [.init(provider: "narrow", model: "upstream-narrow")]))
        }) { gateway in
            let slow = chat("narrow", stream: true, extra: #""fake":{"tokens":8,"delay_ms":100}"#)
            async let holder = gateway.post("/v1/chat/completions", slow)
            #expect(await gateway.upstream.waitForRequests(count: 1, timeout: .seconds(5)))
            async let waiter = gateway.post("/v1/chat/completions", slow)
            try await Task.sleep(for: .milliseconds(200))
            // One connection in use, one request waiting: the next is turned away at once.
            let start = ContinuousClock.now
            let refused = try await gateway.post("/v1/chat/completions", chat("narrow"))
            #expect(ContinuousClock.now - start < .milliseconds(500))
            #expect(refused.status == 503)
            #expect(refused.json["error"]?["type"] == "server_error")
            #expect(refused.json["error"]?["code"] == "upstream_overloaded")
            #expect(refused.header("retry-after") != nil)
            // The two admitted ones both finish, one after the other, over the single connection.
            #expect(try await holder.events.last == "[DONE]")
            #expect(try await waiter.events.last == "[DONE]")
            #expect(gateway.upstream.requests.count == 2)
            let rows = try await gateway.ledger()
            #expect(rows.filter { $0.status == "failed" }.map(\.httpStatus) == [503])
            #expect(rows.filter { $0.status == "failed" }.allSatisfy { $0.cost == .zero })
        }
    }

    @Test func theTotalTimeoutEndsAStreamWithAnErrorEventAndBillsOnlyWhatWasRelayed() async throws {
        try await GatewayHarness.run(configure: { config, _ in
            let timeouts = ProviderConfig.Timeouts(
                connect: .seconds(1), firstByte: .seconds(5), idle: .seconds(2), total: .milliseconds(800))
            config.providers.append(.init(name: "capped", kind: .openai, baseURL: config.providers[0].baseURL, timeouts: timeouts))
            config.models.append(
                .init(
                    name: "capped", deployments: [.init(provider: "capped", model: "upstream-capped")],
                    price: .tokens(inputPer1K: 1_000_000, outputPer1K: 2_000_000)))
        }) { gateway in
            let start = ContinuousClock.now
            let reply = try await gateway.post(
                "/v1/chat/completions", chat("capped", stream: true, extra: #""fake":{"tokens":40,"delay_ms":100}"#))
            #expect(ContinuousClock.now - start < .seconds(3))
            #expect(reply.status == 200)
            #expect(!reply.events.contains("[DONE]"))
            let last = try JSONValue.parse(try #require(reply.events.last))
            #expect(last["error"]?["code"] == "upstream_timeout")
            #expect(last["error"]?["message"]?.stringValue?.contains("total time") == true)
            let relayed = reply.chunks.filter { $0["choices"]?.arrayValue?.first?["delta"]?["content"] != nil }.count
            #expect(relayed > 0 && relayed < 40)
            _ = try await gateway.settled()
            let row = try #require(try await gateway.ledger().first)
            #expect(row.status == "failed")
            // The opening chunk (role only, empty content) is no token.
            #expect((relayed - 1...relayed).contains(row.completionTokens))

            // Before any output, the same limit is a 504 and costs nothing.
            let silent = try await gateway.post(
                "/v1/chat/completions", chat("capped", extra: #""fake":{"first_byte_delay_ms":2000}"#))
            #expect(silent.status == 504)
            #expect(silent.json["error"]?["code"] == "upstream_timeout")
            let failed = try #require(try await gateway.ledger().first)
            #expect(failed.cost == .zero)
        }
    }
}
