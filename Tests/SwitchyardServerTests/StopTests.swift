import AsyncHTTPClient
import Foundation
import NIOCore
import SwitchyardCore
import SwitchyardServer
import Testing

/// Stopping a generation: the upstream is cancelled at once, the client's answer ends cleanly with
/// what was generated, and exactly that is billed. Through both URL styles.
@Suite(.timeLimit(.minutes(2))) struct StopTests {
    /// A stream being read in the background, chunk by chunk.
    final class OpenStream: Sendable {
        final class Text: Sendable {
            let value = Mutex("")
        }

        let task: Task<String, any Error>
        private let received = Text()

        init(_ gateway: GatewayHarness, _ request: HTTPClientRequest) {
            let received = self.received
            task = Task {
                let response = try await gateway.http.execute(request, timeout: .seconds(30))
                for try await piece in response.body { received.value.withLock { $0 += String(buffer: piece) } }
                return received.value.withLock { $0 }
            }
        }

        var text: String { received.value.withLock { $0 } }

        /// Waits until `count` content chunks arrived.
        func waitForContent(_ count: Int) async throws {
            let deadline = ContinuousClock.now + .seconds(10)
            while StopTests.contentChunks(text) < count {
                guard ContinuousClock.now < deadline else { throw CancellationError() }
                try await Task.sleep(for: .milliseconds(5))
            }
        }

        var id: String? {
            (try? JSONValue.parse(String(text.dropFirst(6).prefix { $0 != "\n" })))?["id"]?.stringValue
        }
    }

    static let slow = #""fake":{"tokens":400,"delay_ms":25}"#

    func streamRequest(_ gateway: GatewayHarness, user: String, key: String? = nil, path: String? = nil) -> HTTPClientRequest {
        var request = gateway.request(
            chat("m", stream: true, extra: #""user":"\#(user)","stream_options":{"include_usage":true},\#(Self.slow)"#))
        if let path { request.url = gateway.base + path }
        if let key {
            request.headers.remove(name: "authorization")
            if !key.isEmpty { request.headers.add(name: "authorization", value: "Bearer \(key)") }
        }
        return request
    }

    /// Chunks that carried a token ("w1", " w2", …).
    static func contentChunks(_ text: String) -> Int {
        text.components(separatedBy: "\"content\":\"w").count + text.components(separatedBy: "\"content\":\" w").count - 2
    }

    func contentChunks(_ text: String) -> Int { Self.contentChunks(text) }

    /// Checks a stopped stream's ending and its ledger row; returns the row.
    func expectCleanStop(_ gateway: GatewayHarness, _ text: String, sourceLocation: SourceLocation = #_sourceLocation)
        async throws -> LedgerRow?
    {
        let parser = SSEParserForTests()
        let events = parser.events(text)
        #expect(events.last == "[DONE]", sourceLocation: sourceLocation)
        let chunks = events.dropLast().compactMap { try? JSONValue.parse($0) }
        let usageChunk = chunks.last
        let finish = chunks.dropLast().last
        #expect(finish?["end_reason"] == "cancelled", sourceLocation: sourceLocation)
        #expect(finish?["choices"]?.arrayValue?.first?["finish_reason"] == "stop", sourceLocation: sourceLocation)
        #expect(usageChunk?["choices"] == .array([]), sourceLocation: sourceLocation)
        let relayed = contentChunks(text)
        #expect(usageChunk?["usage"]?["completion_tokens"]?.intValue == relayed, sourceLocation: sourceLocation)
        var row: LedgerRow?
        for _ in 0..<500 {
            row = try await gateway.ledger().first { $0.open.requestID == finish?["id"]?.stringValue }
            if row?.status != "running" { break }
            try await Task.sleep(for: .milliseconds(10))
        }
        #expect(row?.status == "cancelled", sourceLocation: sourceLocation)
        #expect(row?.endReason == "cancelled", sourceLocation: sourceLocation)
        #expect(row?.completionTokens == relayed, sourceLocation: sourceLocation)
        #expect(row?.usageSource == "estimated", sourceLocation: sourceLocation)
        if let row {
            #expect(row.cost == Money(micros: Int64(row.promptTokens + 2 * row.completionTokens)), sourceLocation: sourceLocation)
        }
        return row
    }

    @Test func suspendStopsOnlyThatEndUsersStreams() async throws {
        try await GatewayHarness.run { gateway in
            let other = try await Accounts(store: gateway.store).createAccount(
                id: "other-\(UUID().uuidString.prefix(6))", name: "other", balance: Money(micros: 1_000_000_000))
            let otherKey = try await Accounts(store: gateway.store).createKey(
                accountID: other.id, label: "", models: nil, expiresAt: nil
            ).secret

            let alice = OpenStream(gateway, streamRequest(gateway, user: "alice"))
            let bob = OpenStream(gateway, streamRequest(gateway, user: "bob"))
            let otherAlice = OpenStream(gateway, streamRequest(gateway, user: "alice", key: otherKey))
            try await alice.waitForContent(3)
            try await bob.waitForContent(1)
            try await otherAlice.waitForContent(1)
            let closedBefore = gateway.upstream.closedConnections.count

            let stoppedAt = ContinuousClock.now
            let suspend = try await gateway.get("/llm_api/suspend_current_generate?openid=\(gateway.key)&userid=alice", auth: nil)
            #expect(suspend.json["stopped"] == 1)
            let closed = try #require(await gateway.upstream.waitForClosedConnections(count: closedBefore + 1, timeout: .seconds(5)))
            #expect(closed - stoppedAt < .milliseconds(100), "upstream closed \(closed - stoppedAt) after the stop")

            let text = try await alice.task.value
            let row = try await expectCleanStop(gateway, text)
            #expect(row?.open.endUser == "alice")

            let again = try await gateway.get("/llm_api/suspend_current_generate?openid=\(gateway.key)&userid=alice", auth: nil)
            #expect(again.json["stopped"] == 0)
            // Bob's and the other account's alice's streams go on.
            let bobBefore = contentChunks(bob.text)
            try await bob.waitForContent(bobBefore + 3)
            try await otherAlice.waitForContent(contentChunks(otherAlice.text) + 3)
            bob.task.cancel()
            otherAlice.task.cancel()
        }
    }

    @Test func cancelByIdBelongsToTheOwningAccountOnly() async throws {
        try await GatewayHarness.run { gateway in
            let stream = OpenStream(gateway, streamRequest(gateway, user: "carol"))
            try await stream.waitForContent(2)
            let id = try #require(stream.id)

            let stranger = try await Accounts(store: gateway.store).createAccount(
                id: "stranger-\(UUID().uuidString.prefix(6))", name: "s", balance: .zero)
            let strangerKey = try await Accounts(store: gateway.store).createKey(
                accountID: stranger.id, label: "", models: nil, expiresAt: nil
            ).secret
            let denied = try await gateway.post("/v1/chat/completions/\(id)/cancel", "", auth: strangerKey)
            #expect(denied.status == 404)
            #expect(try await gateway.post("/v1/chat/completions/chatcmpl-nope/cancel", "").status == 404)

            let cancelled = try await gateway.post("/v1/chat/completions/\(id)/cancel", "")
            #expect(cancelled.status == 200)
            #expect(cancelled.json["cancelled"] == true)
            _ = try await expectCleanStop(gateway, try await stream.task.value)
            #expect(try await gateway.post("/v1/chat/completions/\(id)/cancel", "").status == 404)
            #expect(try await gateway.get("/llm_api/suspend_current_generate?openid=\(gateway.key)&userid=carol", auth: nil).json["stopped"] == 0)
        }
    }

    @Test func aStoppedNonStreamingRequestReturnsThePartialAnswer() async throws {
        try await GatewayHarness.run { gateway in
            let body = chat("m-always", extra: #""user":"dave","fake":{"tokens":400,"delay_ms":20}"#)
            let before = gateway.upstream.requests.count
            let pending = Task { try await gateway.post("/v1/chat/completions", body) }
            // Some words must have been generated before the stop, however slow the machine is today.
            #expect(await gateway.upstream.waitForRequests(count: before + 1, timeout: .seconds(10)))
            try await Task.sleep(for: .milliseconds(300))
            let suspend = try await gateway.post("/llm_api/suspend_current_generate?openid=\(gateway.key)&userid=dave", "", auth: nil)
            #expect(suspend.json["stopped"] == 1)
            let reply = try await pending.value
            #expect(reply.status == 200)
            #expect(reply.json["end_reason"] == "cancelled")
            let choice = reply.json["choices"]?.arrayValue?.first
            #expect(choice?["finish_reason"] == "stop")
            let content = try #require(choice?["message"]?["content"]?.stringValue)
            #expect(content.hasPrefix("w1 w2"))
            let words = content.split(separator: " ").count
            #expect(reply.json["usage"]?["completion_tokens"]?.intValue == words)
            _ = try await gateway.settled()
            let row = try #require(try await gateway.ledger().first)
            #expect(row.status == "cancelled")
            #expect(row.completionTokens == words)
        }
    }

    @Test func theSeedsPathStyleWorksForCallsModelsAndStops() async throws {
        try await GatewayHarness.run { gateway in
            let key = gateway.key
            let named = try await gateway.post("/llm_api/\(key)/erin/m/v1/chat/completions", #"{"messages":[{"role":"user","content":"hi"}]}"#, auth: nil)
            #expect(named.status == 200)
            #expect(named.json["model"] == "m")
            let fromBody = try await gateway.post("/llm_api/\(key)/erin//v1/chat/completions", chat("m-request"), auth: nil)
            #expect(fromBody.json["model"] == "m-request")
            let bearer = try await gateway.post("/llm_api/ignored/erin/m/v1/completions", #"{"prompt":"x"}"#)
            #expect(bearer.status == 200)
            #expect(bearer.json["object"] == "text_completion")
            #expect(try await gateway.post("/llm_api/sk-sy-wrong/erin/m/v1/chat/completions", chat("m"), auth: nil).status == 401)
            let models = try await gateway.get("/llm_api/\(key)/erin//v1/models", auth: nil)
            #expect(models.json["object"] == "list")
            let rows = try await gateway.ledger()
            #expect(rows.filter { $0.open.endUser == "erin" }.count == 3)

            let stream = OpenStream(gateway, streamRequest(gateway, user: "ignored", key: "", path: "/llm_api/\(key)/frank/m/v1/chat/completions"))
            try await stream.waitForContent(2)
            let suspend = try await gateway.get("/llm_api/suspend_current_generate?openid=\(key)&userid=frank", auth: nil)
            #expect(suspend.json["stopped"] == 1)
            let row = try await expectCleanStop(gateway, try await stream.task.value)
            #expect(row?.open.endUser == "frank")
        }
    }
}

import Synchronization

/// SSE payloads of a whole body, for assertions.
struct SSEParserForTests {
    func events(_ text: String) -> [String] {
        text.components(separatedBy: "\n\n").compactMap { block in
            block.hasPrefix("data: ") ? String(block.dropFirst(6)) : nil
        }
    }
}
