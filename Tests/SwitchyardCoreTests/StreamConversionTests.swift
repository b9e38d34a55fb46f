import Testing

@testable import SwitchyardCore

@Suite struct StreamConversionTests {
    let identity = ResponseIdentity(id: "chatcmpl-gw", model: "public", created: 7)

    func chunk(_ text: String) throws -> JSONObject {
        guard case .object(let object) = try JSONValue.parse(text) else { throw JSONParseError(offset: 0, reason: "") }
        return object
    }

    @Test func aggregatorAssemblesContentToolCallsAndUsage() throws {
        var aggregator = StreamAggregator(endpoint: .chatCompletions)
        let chunks = [
            #"{"id":"up","created":5,"model":"u","choices":[{"index":0,"delta":{"role":"assistant","content":"Hel"}}]}"#,
            #"{"id":"up","choices":[{"index":0,"delta":{"content":"lo"}}]}"#,
            #"{"id":"up","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"get","arguments":""}}]}}]}"#,
            #"{"id":"up","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"x\":"}}]}}]}"#,
            #"{"id":"up","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"1}"}}]}}]}"#,
            #"{"id":"up","choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}"#,
            #"{"id":"up","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":4,"total_tokens":7}}"#,
        ]
        for text in chunks { aggregator.add(try chunk(text)) }
        let response = aggregator.response(identity: identity)
        #expect(response["id"] == "chatcmpl-gw")
        #expect(response["model"] == "public")
        #expect(response["created"] == 5)
        #expect(response["object"] == "chat.completion")
        let choice = try #require(response["choices"]?.arrayValue?.first)
        #expect(choice["message"]?["content"] == "Hello")
        #expect(choice["finish_reason"] == "tool_calls")
        let call = try #require(choice["message"]?["tool_calls"]?.arrayValue?.first)
        #expect(call["id"] == "call_1")
        #expect(call["function"]?["arguments"] == #"{"x":1}"#)
        #expect(aggregator.usage == Usage(promptTokens: 3, completionTokens: 4))
    }

    @Test func synthesizerProducesRoleContentFinishAndUsageChunks() throws {
        let whole = try chunk(
            #"{"id":"up","object":"chat.completion","created":5,"model":"u","choices":[{"index":0,"message":{"role":"assistant","content":"Hi","tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"{}"}}]},"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}}"#
        )
        let chunks = StreamSynthesizer.chunks(from: whole, endpoint: .chatCompletions, identity: identity, includeUsage: true)
        #expect(chunks.count == 3)
        #expect(chunks.allSatisfy { $0["id"] == "chatcmpl-gw" && $0["object"] == "chat.completion.chunk" })
        let delta = chunks[0]["choices"]?.arrayValue?.first?["delta"]
        #expect(delta?["content"] == "Hi")
        #expect(delta?["tool_calls"]?.arrayValue?.first?["index"] == 0)
        #expect(chunks[1]["choices"]?.arrayValue?.first?["finish_reason"] == "stop")
        #expect(chunks[2]["choices"] == .array([]))
        #expect(chunks[2]["usage"]?["total_tokens"] == 3)
        let withoutUsage = StreamSynthesizer.chunks(
            from: whole, endpoint: .chatCompletions, identity: identity, includeUsage: false)
        #expect(withoutUsage.count == 2)
        #expect(withoutUsage.allSatisfy { $0["usage"] == nil })
    }

    @Test func relayStampsIdentityAndHidesUsageTheClientDidNotAskFor() throws {
        var relay = StreamRelay(identity: identity, endpoint: .chatCompletions, clientWantsUsage: false)
        let content = try relay.relay(Array(#"{"id":"up","model":"u","choices":[{"index":0,"delta":{"content":"x"}}],"usage":null}"#.utf8))
        guard case .forward(let bytes) = content else {
            Issue.record("expected a forwarded chunk")
            return
        }
        let text = String(decoding: bytes, as: UTF8.self)
        #expect(text.hasPrefix("data: {\"id\":\"chatcmpl-gw\",\"model\":\"public\""))
        #expect(text.hasSuffix("\n\n"))
        #expect(!text.contains("usage"))
        let usage = try relay.relay(Array(#"{"id":"up","choices":[],"usage":{"prompt_tokens":1,"completion_tokens":1}}"#.utf8))
        #expect(usage == .drop)
        #expect(relay.usage == Usage(promptTokens: 1, completionTokens: 1))
        #expect(relay.outputChunks == 1)
        #expect(throws: UpstreamError.self) { try relay.relay(Array("not json".utf8)) }
    }
}
