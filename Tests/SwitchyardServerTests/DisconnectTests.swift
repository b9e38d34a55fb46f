import AsyncHTTPClient
import NIOCore
import SwitchyardCore
import Testing

/// A client that goes away must not leave the upstream generating: the gateway cancels the upstream
/// request at once, which the upstream sees as its connection closing.
@Suite(.timeLimit(.minutes(1))) struct DisconnectTests {
    /// Waits for the upstream to see one more closed connection and returns how long after `since` it came.
    func upstreamClose(_ gateway: GatewayHarness, before: Int, since: ContinuousClock.Instant) async throws -> Duration {
        let closed = try #require(await gateway.upstream.waitForClosedConnections(count: before + 1, timeout: .seconds(5)))
        return closed - since
    }

    @Test func leavingMidStreamClosesTheUpstreamWithin100ms() async throws {
        try await GatewayHarness.run { gateway in
            let before = gateway.upstream.closedConnections.count
            let body = chat("m", stream: true, extra: #""fake":{"tokens":200,"delay_ms":50}"#)
            let response = try await gateway.http.execute(gateway.request(body), timeout: .seconds(10))
            var received = ""
            for try await piece in response.body {
                received += String(buffer: piece)
                if received.components(separatedBy: "\"content\":").count > 3 { break }
            }
            let left = ContinuousClock.now
            let lag = try await upstreamClose(gateway, before: before, since: left)
            #expect(lag < .milliseconds(100), "upstream closed \(lag) after the client left")
            #expect(gateway.upstream.openConnections == 0)
        }
    }

    @Test func leavingWhileAWholeAnswerIsAssembledClosesTheUpstreamWithin100ms() async throws {
        try await GatewayHarness.run { gateway in
            let before = gateway.upstream.closedConnections.count
            let body = chat("m-always", extra: #""fake":{"tokens":100,"delay_ms":50}"#)
            await #expect(throws: (any Error).self) {
                _ = try await gateway.http.execute(gateway.request(body), timeout: .milliseconds(300))
            }
            let left = ContinuousClock.now
            let lag = try await upstreamClose(gateway, before: before, since: left)
            #expect(lag < .milliseconds(100), "upstream closed \(lag) after the client left")
        }
    }

    /// Billed must equal generated: what the upstream produced for a client that left before its
    /// assembled answer was complete is charged (and counted), not dropped.
    @Test func aClientThatLeavesAnAssembledAnswerIsBilledForWhatWasGenerated() async throws {
        try await GatewayHarness.run(configure: { config, _ in
            config.models.append(
                .init(
                    name: "m-always-priced", deployments: [.init(provider: "fake-always", model: "upstream-m")],
                    price: .tokens(inputPer1K: 1_000_000, outputPer1K: 2_000_000)))
        }) { gateway in
            let body = chat("m-always-priced", extra: #""fake":{"tokens":100,"delay_ms":50,"no_usage":true}"#)
            // 800 ms: about 15 tokens, so that even a loaded machine has generated some.
            await #expect(throws: (any Error).self) {
                _ = try await gateway.http.execute(gateway.request(body), timeout: .milliseconds(800))
            }
            _ = try await gateway.settled()
            let row = try #require(try await gateway.ledger().first)
            #expect(row.status == "client_closed")
            #expect(row.completionTokens >= 3 && row.completionTokens < 100, "\(row.completionTokens) tokens")
            #expect(row.cost > .zero && row.usageSource == "estimated")
        }
    }

    @Test func leavingBeforeTheFirstByteClosesTheUpstreamWithin100ms() async throws {
        try await GatewayHarness.run { gateway in
            let before = gateway.upstream.closedConnections.count
            let body = chat("m", stream: true, extra: #""fake":{"first_byte_delay_ms":900}"#)
            await #expect(throws: (any Error).self) {
                _ = try await gateway.http.execute(gateway.request(body), timeout: .milliseconds(200))
            }
            let left = ContinuousClock.now
            let lag = try await upstreamClose(gateway, before: before, since: left)
            #expect(lag < .milliseconds(100), "upstream closed \(lag) after the client left")
        }
    }

    @Test func theBuiltInTestModelStopsGeneratingWhenTheClientLeaves() async throws {
        try await GatewayHarness.run { gateway in
            // The test provider has no connection to observe; the gateway must still answer the
            // next request promptly, and nothing must crash.
            await #expect(throws: (any Error).self) {
                _ = try await gateway.http.execute(gateway.request(chat("demo", stream: true)), timeout: .milliseconds(1))
            }
            let reply = try await gateway.post("/v1/chat/completions", chat("demo"))
            #expect(reply.status == 200)
        }
    }
}
