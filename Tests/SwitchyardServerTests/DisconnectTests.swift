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
