import AsyncHTTPClient
import Foundation
import NIOCore
import SwitchyardCore
import SwitchyardServer
import Testing

/// The agents' APIs (`/v1/responses`, `/v1/messages`) against a chat-only upstream (translated) and
/// one that speaks Responses (passed through): billed on the same ledger, stopped the same way,
/// never a clean ending after a failure, nothing held for what is refused.
@Suite(.timeLimit(.minutes(2))) struct AgentAPITests {
    static func withNative(_ config: inout Config, _: String) {
        config.providers.append(
            .init(
                name: "fake-native", kind: .openai, baseURL: config.providers[0].baseURL,
                timeouts: config.providers[0].timeouts))
        config.providers[config.providers.count - 1].responses = .native
        config.models.append(
            .init(
                name: "m-native", deployments: [.init(provider: "fake-native", model: "upstream-native")],
                price: .tokens(inputPer1K: 1_000_000, outputPer1K: 2_000_000)))
    }

    /// `(event name, payload)` of each event in an SSE body with `event:` lines.
    static func namedEvents(_ text: String) -> [(String, JSONValue)] {
        text.components(separatedBy: "\n\n").compactMap { block -> (String, JSONValue)? in
            let lines = block.split(separator: "\n")
            guard lines.count >= 2, lines[0].hasPrefix("event: "), lines[1].hasPrefix("data: ") else { return nil }
            guard let payload = try? JSONValue.parse(String(lines[1].dropFirst(6))) else { return nil }
            return (String(lines[0].dropFirst(7)), payload)
        }
    }

    func settledRow(_ gateway: GatewayHarness, id: String?) async throws -> LedgerRow {
        for _ in 0..<500 {
            if let row = try await gateway.ledger().first(where: { $0.open.requestID == id }), row.status != "running" {
                return row
            }
            try await Task.sleep(for: .milliseconds(10))
        }
        throw CancellationError()
    }

    @Test func aTranslatedResponseIsBilledLikeChatAndRecordsItsAPI() async throws {
        try await GatewayHarness.run { gateway in
            let reply = try await gateway.post(
                "/v1/responses", ##"{"model":"m","input":"hello there","instructions":"#fake {\"tokens\":4}"}"##)
            #expect(reply.status == 200)
            let id = try #require(reply.json["id"]?.stringValue)
            #expect(id.hasPrefix("resp_"))
            #expect(reply.json["object"] == "response")
            #expect(reply.json["status"] == "completed")
            #expect(reply.json["model"] == "m")
            #expect(reply.json["output"]?.arrayValue?.first?["content"]?.arrayValue?.first?["text"] == "w1 w2 w3 w4")
            let usage = try #require(reply.json["usage"])
            // What the upstream was sent: chat completions, the instructions as the system message.
            let sent = gateway.lastUpstreamBody
            #expect(sent["model"] == "upstream-m")
            #expect(sent["messages"]?.arrayValue?.first?["role"] == "system")
            #expect(sent["input"] == nil)
            let row = try await settledRow(gateway, id: id)
            #expect(row.open.api == "responses")
            #expect(row.status == "completed")
            #expect(row.promptTokens == usage["input_tokens"]?.intValue)
            #expect(row.completionTokens == 4)
            #expect(row.cost == Money(micros: Int64(row.promptTokens + 2 * row.completionTokens)))
            let chatReply = try await gateway.post("/v1/chat/completions", chat("m"))
            #expect(try await settledRow(gateway, id: chatReply.json["id"]?.stringValue).open.api == "chat")
        }
    }

    @Test func refusedRequestsHoldNothingAndSayWhy() async throws {
        try await GatewayHarness.run { gateway in
            let before = try await gateway.account
            let previous = try await gateway.post(
                "/v1/responses", #"{"model":"m","input":"hi","previous_response_id":"resp_123"}"#)
            #expect(previous.status == 400)
            #expect(previous.json["error"]?["param"] == "previous_response_id")
            #expect(previous.json["error"]?["message"]?.stringValue?.contains("does not store") == true)
            let noMax = try await gateway.post("/v1/messages", #"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#)
            #expect(noMax.status == 400)
            #expect(noMax.json["type"] == "error")
            #expect(noMax.json["error"]?["type"] == "invalid_request_error")
            let badKey = try await gateway.post("/v1/messages", #"{"model":"m","max_tokens":5,"messages":[]}"#, auth: "sk-sy-nope")
            #expect(badKey.status == 401)
            #expect(badKey.json["error"]?["type"] == "authentication_error")
            let unknown = try await gateway.post(
                "/v1/messages", #"{"model":"nope","max_tokens":5,"messages":[{"role":"user","content":"hi"}]}"#)
            #expect(unknown.status == 404)
            #expect(unknown.json["error"]?["type"] == "not_found_error")

            var upgrade = HTTPClientRequest(url: gateway.base + "/v1/responses")
            upgrade.headers.add(name: "authorization", value: "Bearer \(gateway.key)")
            upgrade.headers.add(name: "connection", value: "Upgrade")
            upgrade.headers.add(name: "upgrade", value: "websocket")
            upgrade.headers.add(name: "sec-websocket-version", value: "13")
            upgrade.headers.add(name: "sec-websocket-key", value: "dGhlIHNhbXBsZSBub25jZQ==")
            let refused = try await gateway.execute(upgrade)
            #expect(refused.status == 426)
            #expect(refused.json["error"]?["code"] == "upgrade_required")

            #expect(try await gateway.ledger().isEmpty)
            #expect(try await gateway.account.balance == before.balance)
            #expect(gateway.upstream.requests.isEmpty)
        }
    }

    @Test func aResponseStreamStoppedByItsIdEndsIncompleteAndIsBilledForWhatWasSent() async throws {
        try await GatewayHarness.run { gateway in
            let body = ##"{"model":"m","stream":true,"input":"hi","instructions":"#fake {\"tokens\":400,\"delay_ms\":20}"}"##
            let stream = StopTests.OpenStream(gateway, gateway.request(body, path: "/v1/responses"))
            let deadline = ContinuousClock.now + .seconds(10)
            while Self.namedEvents(stream.text).filter({ $0.0 == "response.output_text.delta" }).count < 3 {
                guard ContinuousClock.now < deadline else { throw CancellationError() }
                try await Task.sleep(for: .milliseconds(5))
            }
            let id = try #require(Self.namedEvents(stream.text).first?.1["response"]?["id"]?.stringValue)
            let running = try await gateway.get("/v1/responses/\(id)")
            #expect(running.status == 200)
            #expect(running.json["status"] == "in_progress")
            let stranger = try await Accounts(store: gateway.store).createAccount(
                id: "s-\(UUID().uuidString.prefix(6))", name: "s", balance: .zero)
            let strangerKey = try await Accounts(store: gateway.store).createKey(
                accountID: stranger.id, label: "", models: nil, expiresAt: nil
            ).secret
            #expect(try await gateway.get("/v1/responses/\(id)", auth: strangerKey).status == 404)
            #expect(try await gateway.post("/v1/responses/\(id)/cancel", "", auth: strangerKey).status == 404)

            let closedBefore = gateway.upstream.closedConnections.count
            let cancelled = try await gateway.post("/v1/responses/\(id)/cancel", "")
            #expect(cancelled.status == 200)
            #expect(cancelled.json["status"] == "cancelled")
            #expect(await gateway.upstream.waitForClosedConnections(count: closedBefore + 1, timeout: .seconds(5)) != nil)
            let events = Self.namedEvents(try await stream.task.value)
            let deltas = events.filter { $0.0 == "response.output_text.delta" }.count
            let last = try #require(events.last)
            #expect(last.0 == "response.incomplete")
            #expect(last.1["response"]?["status"] == "cancelled")
            #expect(!events.contains { $0.0 == "response.completed" })
            #expect(events.map { $0.1["sequence_number"]?.intValue } == Array(0..<events.count))
            let row = try await settledRow(gateway, id: id)
            #expect(row.status == "cancelled")
            #expect(row.completionTokens == deltas)
            #expect(last.1["response"]?["usage"]?["output_tokens"]?.intValue == deltas)
            #expect(try await gateway.get("/v1/responses/\(id)").status == 404)
        }
    }

    @Test func aMessagesStreamSuspendedByEndUserEndsWithMessageStop() async throws {
        try await GatewayHarness.run { gateway in
            let body = ##"{"model":"m","stream":true,"max_tokens":500,"metadata":{"user_id":"zoe"},"system":"#fake {\"tokens\":400,\"delay_ms\":20}","messages":[{"role":"user","content":"hi"}]}"##
            var request = gateway.request(body, path: "/v1/messages")
            request.headers.remove(name: "authorization")
            request.headers.add(name: "x-api-key", value: gateway.key)
            let stream = StopTests.OpenStream(gateway, request)
            let deadline = ContinuousClock.now + .seconds(10)
            while Self.namedEvents(stream.text).filter({ $0.0 == "content_block_delta" }).count < 3 {
                guard ContinuousClock.now < deadline else { throw CancellationError() }
                try await Task.sleep(for: .milliseconds(5))
            }
            let suspend = try await gateway.get("/llm_api/suspend_current_generate?openid=\(gateway.key)&userid=zoe", auth: nil)
            #expect(suspend.json["stopped"] == 1)
            let events = Self.namedEvents(try await stream.task.value)
            #expect(events.first?.0 == "message_start")
            #expect(events.suffix(3).map(\.0) == ["content_block_stop", "message_delta", "message_stop"])
            let delta = try #require(events.first { $0.0 == "message_delta" }?.1)
            #expect(delta["end_reason"] == "cancelled")
            let id = events.first?.1["message"]?["id"]?.stringValue
            let row = try await settledRow(gateway, id: id)
            #expect(row.open.api == "messages")
            #expect(row.open.endUser == "zoe")
            #expect(row.status == "cancelled")
            #expect(delta["usage"]?["output_tokens"]?.intValue == row.completionTokens)
        }
    }

    @Test func anUpstreamFailureMidStreamNeverEndsCleanly() async throws {
        try await GatewayHarness.run { gateway in
            let responses = try await gateway.post(
                "/v1/responses", ##"{"model":"m","stream":true,"input":"hi","instructions":"#fake {\"tokens\":10,\"die_after\":3}"}"##)
            let events = Self.namedEvents(responses.text)
            #expect(events.last?.0 == "response.failed")
            #expect(events.last?.1["response"]?["status"] == "failed")
            #expect(!events.contains { $0.0 == "response.completed" })
            let messages = try await gateway.post(
                "/v1/messages",
                ##"{"model":"m","stream":true,"max_tokens":50,"system":"#fake {\"tokens\":10,\"die_after\":3}","messages":[{"role":"user","content":"hi"}]}"##)
            let anthropic = Self.namedEvents(messages.text)
            #expect(anthropic.last?.0 == "error")
            #expect(anthropic.last?.1["type"] == "error")
            #expect(!anthropic.contains { $0.0 == "message_stop" })
            _ = try await gateway.settled()
            #expect(try await gateway.ledger().allSatisfy { $0.status != "completed" && $0.status != "running" })
        }
    }

    @Test func aToolCallTranslatesBothWays() async throws {
        try await GatewayHarness.run { gateway in
            let tools = #""tools":[{"type":"function","name":"get_weather","parameters":{"type":"object"}}]"#
            let call = try await gateway.post(
                "/v1/responses", ##"{"model":"m","input":"weather?","instructions":"#fake {\"tool_call\":true}",\##(tools)}"##)
            let item = try #require(call.json["output"]?.arrayValue?.first { $0["type"] == "function_call" })
            #expect(item["name"] == "get_weather")
            #expect(item["arguments"] == #"{"x":1,"y":"two"}"#)
            let callID = try #require(item["call_id"]?.stringValue)
            #expect(gateway.lastUpstreamBody["tools"]?.arrayValue?.first?["function"]?["name"] == "get_weather")

            let back = try await gateway.post(
                "/v1/responses",
                #"{"model":"m","input":[{"role":"user","content":"weather?"},{"type":"function_call","call_id":"\#(callID)","name":"get_weather","arguments":"{}"},{"type":"function_call_output","call_id":"\#(callID)","output":"sunny"}],\#(tools)}"#)
            #expect(back.status == 200)
            let messages = try #require(gateway.lastUpstreamBody["messages"]?.arrayValue)
            #expect(messages.map { $0["role"]?.stringValue } == ["user", "assistant", "tool"])
            #expect(messages[2]["tool_call_id"] == .string(callID))

            let anthropic = try await gateway.post(
                "/v1/messages",
                ##"{"model":"m","max_tokens":50,"system":"#fake {\"tool_call\":true}","tools":[{"name":"get_weather","input_schema":{"type":"object"}}],"messages":[{"role":"user","content":"weather?"}]}"##)
            #expect(anthropic.json["stop_reason"] == "tool_use")
            let use = try #require(anthropic.json["content"]?.arrayValue?.first { $0["type"] == "tool_use" })
            #expect(use["input"]?["y"] == "two")
        }
    }

    @Test func aNativeUpstreamGetsTheResponsesRequestPassedThrough() async throws {
        try await GatewayHarness.run(configure: Self.withNative) { gateway in
            let whole = try await gateway.post(
                "/v1/responses", #"{"model":"m-native","input":"hello there","store":false,"fake":{"tokens":3}}"#)
            #expect(whole.status == 200)
            let sent = gateway.lastUpstreamBody
            #expect(gateway.upstream.requests.last?.path == "/v1/responses")
            #expect(sent["model"] == "upstream-native")
            #expect(sent["input"] == "hello there")
            #expect(sent["fake"]?["tokens"] == 3)
            let id = try #require(whole.json["id"]?.stringValue)
            #expect(id.hasPrefix("resp_") && id != "resp_fake")
            #expect(whole.json["model"] == "m-native")
            let row = try await settledRow(gateway, id: id)
            #expect(row.open.api == "responses")
            #expect(row.completionTokens == 3)
            #expect(row.usageSource == "reported")

            let streamed = try await gateway.post(
                "/v1/responses", #"{"model":"m-native","input":"hello there","stream":true,"fake":{"tokens":4}}"#)
            let events = Self.namedEvents(streamed.text)
            #expect(events.first?.0 == "response.created")
            #expect(events.last?.0 == "response.completed")
            let streamedID = events.first?.1["response"]?["id"]?.stringValue
            #expect(streamedID?.hasPrefix("resp_") == true && streamedID != "resp_fake")
            #expect(events.last?.1["response"]?["id"]?.stringValue == streamedID)
            #expect(events.filter { $0.0 == "response.output_text.delta" }.count == 4)
            let streamedRow = try await settledRow(gateway, id: streamedID)
            #expect(streamedRow.completionTokens == 4)
            #expect(streamedRow.status == "completed")

            let failing = try await gateway.post(
                "/v1/responses", #"{"model":"m-native","input":"x","stream":true,"fake":{"tokens":2,"error_event":true}}"#)
            let failed = Self.namedEvents(failing.text)
            #expect(failed.last?.0 == "response.failed")
            #expect(failed.filter { $0.0 == "response.failed" }.count == 1)
        }
    }
}
