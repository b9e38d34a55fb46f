import Testing

@testable import SwitchyardCore

/// Translations between the caller's dialects and chat completions, and the passthrough meter.
@Suite struct DialectTests {
    func object(_ text: String) throws -> JSONObject {
        guard case .object(let object) = try JSONValue.parse(text) else { throw JSONParseError(offset: 0, reason: "") }
        return object
    }

    /// The SSE events in `bytes`: (event name, payload).
    func events(_ bytes: [UInt8]) throws -> [(String, JSONObject)] {
        try String(decoding: bytes, as: UTF8.self).components(separatedBy: "\n\n").filter { !$0.isEmpty }.map { block in
            let lines = block.split(separator: "\n")
            let name = String(lines[0].dropFirst("event: ".count))
            return (name, try object(String(lines[1].dropFirst("data: ".count))))
        }
    }

    // MARK: Responses → chat

    @Test func responsesRequestBecomesChatWithToolsHistoryAndFormat() throws {
        let body = try object(
            #"""
            {"model":"m","instructions":"be brief","stream":true,"max_output_tokens":50,"temperature":0.5,
             "input":[{"role":"developer","content":"dev note"},
                      {"type":"message","role":"user","content":[{"type":"input_text","text":"weather?"},
                                                                 {"type":"input_image","image_url":"data:image/png;base64,AA=="}]},
                      {"type":"reasoning","id":"rs_1","summary":[]},
                      {"type":"function_call","call_id":"call_1","name":"get_weather","arguments":"{\"city\":\"Oslo\"}"},
                      {"type":"function_call_output","call_id":"call_1","output":"sunny"}],
             "tools":[{"type":"function","name":"get_weather","description":"d","parameters":{"type":"object"},"strict":true}],
             "tool_choice":{"type":"function","name":"get_weather"},
             "text":{"format":{"type":"json_schema","name":"w","schema":{"type":"object"},"strict":true}},
             "reasoning":{"effort":"low"},"store":true,"include":["reasoning.encrypted_content"]}
            """#)
        let chat = try ResponsesRequest.chatBody(from: body)
        let messages = try #require(chat["messages"]?.arrayValue)
        #expect(messages.count == 5)
        #expect(messages[0]["role"] == "system")
        #expect(messages[0]["content"] == "be brief")
        #expect(messages[1]["role"] == "system")
        #expect(messages[2]["content"]?.arrayValue?[1]["image_url"]?["url"] == "data:image/png;base64,AA==")
        #expect(messages[3]["role"] == "assistant")
        #expect(messages[3]["tool_calls"]?.arrayValue?.first?["function"]?["name"] == "get_weather")
        #expect(messages[3]["tool_calls"]?.arrayValue?.first?["id"] == "call_1")
        #expect(messages[4]["role"] == "tool")
        #expect(messages[4]["tool_call_id"] == "call_1")
        #expect(messages[4]["content"] == "sunny")
        #expect(chat["tools"]?.arrayValue?.first?["function"]?["parameters"]?["type"] == "object")
        #expect(chat["tool_choice"]?["function"]?["name"] == "get_weather")
        #expect(chat["max_tokens"] == 50)
        #expect(chat["response_format"]?["json_schema"]?["name"] == "w")
        #expect(chat["reasoning_effort"] == "low")
        #expect(chat["stream"] == true)
        #expect(chat["store"] == nil)
        #expect(chat["include"] == nil)
    }

    @Test func responsesRefusesWhatNeedsStoredState() throws {
        for field in [#""previous_response_id":"resp_1""#, #""conversation":"conv_1""#] {
            let body = try object(#"{"model":"m","input":"hi",\#(field)}"#)
            #expect(throws: GatewayError.self) { try ResponsesRequest.chatBody(from: body) }
        }
        // Built-in tools run inside OpenAI's service: left out of a translated request, not refused.
        let builtIn = try object(#"{"model":"m","input":"hi","tools":[{"type":"web_search"}],"tool_choice":"required"}"#)
        #expect(try ResponsesRequest.chatBody(from: builtIn)["tools"] == nil)
        #expect(try ResponsesRequest.chatBody(from: builtIn)["tool_choice"] == nil)
        let reference = try object(#"{"model":"m","input":[{"type":"item_reference","id":"x"}]}"#)
        #expect(throws: GatewayError.self) { try ResponsesRequest.chatBody(from: reference) }
    }

    @Test func wholeChatCompletionBecomesResponse() throws {
        let identity = ResponseIdentity(id: "resp_abc", model: "public", created: 9)
        let answer = ResponsesAnswer(request: try object(#"{"model":"m","input":"x","instructions":"i"}"#), identity: identity)
        let chat = try object(
            #"{"choices":[{"index":0,"message":{"role":"assistant","content":"Hi","tool_calls":[{"id":"call_9","type":"function","function":{"name":"f","arguments":"{}"}}]},"finish_reason":"tool_calls"}],"usage":{"prompt_tokens":5,"completion_tokens":2,"total_tokens":7,"prompt_tokens_details":{"cached_tokens":3}}}"#)
        let response = answer.response(fromChat: chat, usage: Usage(promptTokens: 0, completionTokens: 0), completedAt: 10)
        #expect(response["status"] == "completed")
        #expect(response["instructions"] == "i")
        #expect(response["store"] == false)
        let output = try #require(response["output"]?.arrayValue)
        #expect(output.count == 2)
        #expect(output[0]["content"]?.arrayValue?.first?["text"] == "Hi")
        #expect(output[1]["type"] == "function_call")
        #expect(output[1]["call_id"] == "call_9")
        #expect(response["usage"]?["input_tokens"] == 5)
        #expect(response["usage"]?["input_tokens_details"]?["cached_tokens"] == 3)
        #expect(response["usage"]?["total_tokens"] == 7)
    }

    @Test func responsesStreamEventsAreNumberedAndClosedInOrder() throws {
        let identity = ResponseIdentity(id: "resp_abc", model: "public", created: 9)
        var encoder = ResponsesStreamEncoder(answer: ResponsesAnswer(request: [:], identity: identity))
        var bytes: [UInt8] = []
        for text in [
            #"{"choices":[{"index":0,"delta":{"role":"assistant","content":"He"}}]}"#,
            #"{"choices":[{"index":0,"delta":{"content":"llo"}}]}"#,
            #"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_1","function":{"name":"f","arguments":"{\"a\""}}]}}]}"#,
            #"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":":1}"}}]}}]}"#,
            #"{"choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}"#,
        ] {
            bytes += encoder.encode(try object(text))
        }
        bytes += encoder.finish(usage: Usage(promptTokens: 4, completionTokens: 6), completedAt: 11)
        let all = try events(bytes)
        #expect(all.map(\.0) == [
            "response.created", "response.in_progress", "response.output_item.added", "response.content_part.added",
            "response.output_text.delta", "response.output_text.delta", "response.output_text.done",
            "response.content_part.done", "response.output_item.done", "response.output_item.added",
            "response.function_call_arguments.delta", "response.function_call_arguments.delta",
            "response.function_call_arguments.done", "response.output_item.done", "response.completed",
        ])
        #expect(all.map { $0.1["sequence_number"]?.intValue } == Array(0..<all.count))
        for (name, payload) in all { #expect(payload["type"] == .string(name)) }
        let done = all[12].1
        #expect(done["arguments"] == #"{"a":1}"#)
        let completed = try #require(all.last?.1["response"])
        #expect(completed["status"] == "completed")
        #expect(completed["output"]?.arrayValue?.count == 2)
        #expect(completed["output"]?.arrayValue?[0]["content"]?.arrayValue?.first?["text"] == "Hello")
        #expect(completed["usage"]?["output_tokens"] == 6)
    }

    @Test func responsesStreamStoppedAndFailedNeverEndCleanly() throws {
        let identity = ResponseIdentity(id: "resp_abc", model: "public", created: 9)
        var stopped = ResponsesStreamEncoder(answer: ResponsesAnswer(request: [:], identity: identity))
        var bytes = stopped.encode(try object(#"{"choices":[{"index":0,"delta":{"content":"Hi"}}]}"#))
        bytes += stopped.stopped(usage: Usage(promptTokens: 1, completionTokens: 1))
        let last = try #require(try events(bytes).last)
        #expect(last.0 == "response.incomplete")
        #expect(last.1["response"]?["status"] == "cancelled")
        #expect(last.1["response"]?["end_reason"] == "cancelled")

        var failed = ResponsesStreamEncoder(answer: ResponsesAnswer(request: [:], identity: identity))
        let failure = failed.failed(["message": "boom"], usage: Usage(promptTokens: 1, completionTokens: 0))
        let names = try events(failure).map(\.0)
        #expect(names == ["response.created", "response.in_progress", "response.failed"])
        #expect(try events(failure).last?.1["response"]?["error"]?["message"] == "boom")
    }

    @Test func codexToolsAreFlattenedAndMappedBack() throws {
        let body = try object(
            #"""
            {"model":"m","input":[{"type":"function_call","id":"fc_1","status":"completed","namespace":"multi_agent_v1","name":"wait_agent","call_id":"c1","arguments":"{}"},
                                  {"type":"function_call_output","id":"fco_1","call_id":"c1","output":"done"},
                                  {"type":"custom_tool_call","call_id":"c2","name":"apply_patch","input":"*** Begin Patch"}],
             "tools":[{"type":"function","name":"exec_command","parameters":{"type":"object"},"strict":false},
                      {"type":"namespace","name":"multi_agent_v1","tools":[{"type":"function","name":"wait_agent","parameters":{"type":"object"}}]},
                      {"type":"custom","name":"apply_patch","format":{"type":"grammar","syntax":"lark","definition":"start: x"}},
                      {"type":"web_search","external_web_access":false},{"type":"tool_search","execution":"client"}]}
            """#)
        let chat = try ResponsesRequest.chatBody(from: body)
        let names = chat["tools"]?.arrayValue?.compactMap { $0["function"]?["name"]?.stringValue }
        #expect(names == ["exec_command", "multi_agent_v1__wait_agent", "apply_patch"])
        let messages = try #require(chat["messages"]?.arrayValue)
        #expect(messages[0]["tool_calls"]?.arrayValue?.first?["function"]?["name"] == "multi_agent_v1__wait_agent")
        #expect(messages[2]["tool_calls"]?.arrayValue?.first?["function"]?["arguments"] == #"{"input":"*** Begin Patch"}"#)

        let answer = ResponsesAnswer(request: body, identity: ResponseIdentity(id: "resp_x", model: "p", created: 1))
        let namespaced = answer.callItem(id: "fc", callID: "c", chatName: "multi_agent_v1__wait_agent", arguments: "{}", status: "completed")
        #expect(namespaced["name"] == "wait_agent")
        #expect(namespaced["namespace"] == "multi_agent_v1")
        let custom = answer.callItem(id: "ct", callID: "c", chatName: "apply_patch", arguments: #"{"input":"patch text"}"#, status: "completed")
        #expect(custom["type"] == "custom_tool_call")
        #expect(custom["input"] == "patch text")
        #expect(answer.callItem(id: "f", callID: "c", chatName: "exec_command", arguments: "{}", status: "completed")["type"] == "function_call")

        var encoder = ResponsesStreamEncoder(answer: answer)
        var bytes = encoder.encode(
            try object(#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"c9","function":{"name":"apply_patch","arguments":"{\"input\":\"a\\nb\"}"}}]}}]}"#))
        bytes += encoder.finish(usage: Usage(promptTokens: 1, completionTokens: 1), completedAt: 2)
        let all = try events(bytes)
        #expect(!all.contains { $0.0 == "response.function_call_arguments.delta" })
        #expect(all.first { $0.0 == "response.custom_tool_call_input.done" }?.1["input"] == "a\nb")
        #expect(all.last?.1["response"]?["output"]?.arrayValue?.first?["type"] == "custom_tool_call")
    }

    @Test func lenientTranslationLeavesOutWhatItCannotTranslate() throws {
        let body = try object(#"{"model":"m","input":[{"type":"web_search_call","id":"ws_1"},{"role":"user","content":"hi"}]}"#)
        #expect(throws: GatewayError.self) { try ResponsesRequest.chatBody(from: body) }
        let chat = try ResponsesRequest.chatBody(from: body, lenient: true)
        #expect(chat["messages"]?.arrayValue?.count == 1)
    }

    // MARK: Messages → chat

    @Test func claudeCodesSystemTurnsInsideMessagesAreKept() throws {
        let body = try object(
            ##"{"model":"m","max_tokens":32000,"thinking":{"type":"adaptive"},"messages":[{"role":"user","content":"hi"},{"role":"system","content":[{"type":"text","text":"# Environment","cache_control":{"type":"ephemeral"}}]}]}"##)
        let chat = try MessagesRequest.chatBody(from: body)
        #expect(chat["messages"]?.arrayValue?.map { $0["role"]?.stringValue } == ["user", "system"])
        #expect(chat["messages"]?.arrayValue?.last?["content"] == "# Environment")
        #expect(chat["thinking"] == nil)
    }


    @Test func messagesRequestBecomesChatWithToolResultsFirst() throws {
        let body = try object(
            #"""
            {"model":"m","max_tokens":64,"system":[{"type":"text","text":"sys","cache_control":{"type":"ephemeral"}}],
             "stop_sequences":["END"],"metadata":{"user_id":"u1"},
             "tools":[{"name":"get","description":"d","input_schema":{"type":"object"}}],
             "tool_choice":{"type":"any","disable_parallel_tool_use":true},
             "messages":[{"role":"user","content":"hi"},
                         {"role":"assistant","content":[{"type":"thinking","thinking":"t","signature":"s"},
                                                        {"type":"text","text":"calling"},
                                                        {"type":"tool_use","id":"toolu_1","name":"get","input":{"q":1}}]},
                         {"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_1","content":[{"type":"text","text":"42"}]},
                                                   {"type":"text","text":"thanks"}]}]}
            """#)
        let chat = try MessagesRequest.chatBody(from: body)
        let messages = try #require(chat["messages"]?.arrayValue)
        #expect(messages.map { $0["role"]?.stringValue } == ["system", "user", "assistant", "tool", "user"])
        #expect(messages[0]["content"] == "sys")
        #expect(messages[2]["content"] == "calling")
        #expect(messages[2]["tool_calls"]?.arrayValue?.first?["function"]?["arguments"] == #"{"q":1}"#)
        #expect(messages[3]["tool_call_id"] == "toolu_1")
        #expect(messages[3]["content"] == "42")
        #expect(messages[4]["content"] == "thanks")
        #expect(chat["max_tokens"] == 64)
        #expect(chat["stop"]?.arrayValue == ["END"])
        #expect(chat["user"] == "u1")
        #expect(chat["tool_choice"] == "required")
        #expect(chat["parallel_tool_calls"] == false)
        #expect(chat["tools"]?.arrayValue?.first?["function"]?["parameters"]?["type"] == "object")
    }

    @Test func messagesRequiresMaxTokensAndRendersAnthropicErrors() throws {
        let body = try object(#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#)
        do {
            _ = try MessagesRequest.chatBody(from: body)
            Issue.record("expected an error")
        } catch {
            #expect(error.httpStatus == 400)
            #expect(error.anthropicBody["type"] == "error")
            #expect(error.anthropicBody["error"]?["type"] == "invalid_request_error")
        }
        #expect(GatewayError(status: 429, message: "slow", type: "x").anthropicType == "rate_limit_error")
        #expect(GatewayError(status: 401, message: "no", type: "x").anthropicType == "authentication_error")
    }

    @Test func messagesStreamFramesBlocksAndEndsWithUsage() throws {
        let identity = ResponseIdentity(id: "msg_abc", model: "public", created: 9)
        var encoder = MessagesStreamEncoder(identity: identity, promptEstimate: 3)
        var bytes: [UInt8] = []
        for text in [
            #"{"choices":[{"index":0,"delta":{"role":"assistant","content":"Hi"}}]}"#,
            #"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_1","function":{"name":"f","arguments":"{}"}}]}}]}"#,
            #"{"choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}"#,
        ] {
            bytes += encoder.encode(try object(text))
        }
        bytes += encoder.finish(usage: Usage(promptTokens: 10, completionTokens: 5, cachedTokens: 4))
        let all = try events(bytes)
        #expect(all.map(\.0) == [
            "message_start", "ping", "content_block_start", "content_block_delta", "content_block_stop",
            "content_block_start", "content_block_delta", "content_block_stop", "message_delta", "message_stop",
        ])
        #expect(all[5].1["content_block"]?["type"] == "tool_use")
        #expect(all[5].1["index"] == 1)
        let delta = all[8].1
        #expect(delta["delta"]?["stop_reason"] == "tool_use")
        #expect(delta["usage"]?["input_tokens"] == 6)
        #expect(delta["usage"]?["cache_read_input_tokens"] == 4)
        #expect(delta["usage"]?["output_tokens"] == 5)
    }

    // MARK: Anthropic upstream

    @Test func chatBecomesMessagesForAnAnthropicUpstream() throws {
        let chat = try object(
            #"""
            {"model":"claude","messages":[{"role":"system","content":"sys"},{"role":"user","content":[{"type":"text","text":"look"},{"type":"image_url","image_url":{"url":"data:image/png;base64,AAAA"}}]},
             {"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{\"x\":2}"}}]},
             {"role":"tool","tool_call_id":"c1","content":"done"}],
             "stop":"END","tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object"}}}],"tool_choice":"required","stream":true}
            """#)
        let body = AnthropicUpstream.messagesBody(fromChat: chat, defaultMaxTokens: 100)
        #expect(body["system"] == "sys")
        #expect(body["max_tokens"] == 100)
        #expect(body["stop_sequences"]?.arrayValue == ["END"])
        let messages = try #require(body["messages"]?.arrayValue)
        #expect(messages.count == 3)
        #expect(messages[0]["content"]?.arrayValue?[1]["source"]?["media_type"] == "image/png")
        #expect(messages[1]["content"]?.arrayValue?.first?["input"]?["x"] == 2)
        #expect(messages[2]["content"]?.arrayValue?.first?["type"] == "tool_result")
        #expect(body["tool_choice"]?["type"] == "any")
        #expect(body["tools"]?.arrayValue?.first?["input_schema"]?["type"] == "object")
    }

    @Test func anthropicStreamUsageIsCumulativeNotSummed() throws {
        var decoder = AnthropicStreamDecoder(created: 1)
        var chunks: [JSONObject] = []
        for text in [
            #"{"type":"message_start","message":{"id":"msg_u","model":"claude","usage":{"input_tokens":10,"cache_read_input_tokens":7,"cache_creation_input_tokens":3,"output_tokens":1}}}"#,
            #"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#,
            #"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi"}}"#,
            #"{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":5}}"#,
            #"{"type":"message_delta","delta":{},"usage":{"output_tokens":9,"input_tokens":10,"cache_read_input_tokens":7,"cache_creation_input_tokens":3}}"#,
            #"{"type":"message_stop"}"#,
        ] {
            chunks += decoder.decode(try object(text))
        }
        let usage = try #require(Usage(chunks.last?["usage"]))
        #expect(usage == Usage(promptTokens: 20, completionTokens: 9, cachedTokens: 7, cacheWriteTokens: 3))
        #expect(chunks.contains { $0["choices"]?.arrayValue?.first?["delta"]?["content"] == "Hi" })
        #expect(chunks.dropLast().last?["choices"]?.arrayValue?.first?["finish_reason"] == "stop")
    }

    @Test func passthroughMessagesStreamIsMeteredAndStamped() throws {
        let identity = ResponseIdentity(id: "msg_gw", model: "public", created: 1)
        var stream = PassthroughStream(dialect: .anthropic, identity: identity)
        var forwarded: [UInt8] = []
        for text in [
            #"{"type":"message_start","message":{"id":"msg_up","model":"claude-x","usage":{"input_tokens":10,"cache_read_input_tokens":2,"output_tokens":1}}}"#,
            #"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#,
            #"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hello"}}"#,
            #"{"type":"message_delta","delta":{"stop_reason":"max_tokens"},"usage":{"output_tokens":4}}"#,
        ] {
            if case .forward(let bytes) = try stream.relay(Array(text.utf8)) { forwarded += bytes }
        }
        let all = try events(forwarded)
        #expect(all[0].1["message"]?["id"] == "msg_gw")
        #expect(all[0].1["message"]?["model"] == "public")
        #expect(all[2].1["delta"]?["text"] == "Hello")
        #expect(stream.usage == Usage(promptTokens: 12, completionTokens: 4, cachedTokens: 2))
        #expect(stream.finishReason == "length")
        #expect(stream.outputBytes == 5)
        let ending = try events(stream.stopped(usage: Usage(promptTokens: 12, completionTokens: 4)))
        #expect(ending.map(\.0) == ["content_block_stop", "message_delta", "message_stop"])
    }

    @Test func passthroughResponsesStreamContinuesItsNumbering() throws {
        let identity = ResponseIdentity(id: "resp_gw", model: "public", created: 1)
        var stream = PassthroughStream(dialect: .responses, identity: identity)
        for text in [
            #"{"type":"response.created","response":{"id":"resp_up","object":"response","model":"gpt","status":"in_progress","output":[]},"sequence_number":0}"#,
            #"{"type":"response.output_text.delta","item_id":"m","output_index":0,"content_index":0,"delta":"abc","sequence_number":1}"#,
        ] {
            _ = try stream.relay(Array(text.utf8))
        }
        #expect(stream.outputBytes == 3)
        let failed = try events(stream.failed(["message": "x"], usage: Usage(promptTokens: 1, completionTokens: 1)))
        #expect(failed.first?.0 == "response.failed")
        #expect(failed.first?.1["sequence_number"] == 2)
        #expect(failed.first?.1["response"]?["id"] == "resp_gw")
        let completed = #"{"type":"response.completed","response":{"id":"resp_up","status":"completed","usage":{"input_tokens":3,"output_tokens":2,"input_tokens_details":{"cached_tokens":1}}},"sequence_number":3}"#
        _ = try stream.relay(Array(completed.utf8))
        #expect(stream.usage == Usage(promptTokens: 3, completionTokens: 2, cachedTokens: 1))
        #expect(stream.finishReason == "stop")
    }
}
