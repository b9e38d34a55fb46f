import SwitchyardCore
import Testing

@Suite(.timeLimit(.minutes(1))) struct RelayTests {
    @Test func everyFieldIsForwardedVerbatimExceptModel() async throws {
        try await GatewayHarness.run { gateway in
            let body = #"""
                {"model":"m-alias","messages":[{"role":"system","content":"be brief"},{"role":"user","content":[{"type":"text","text":"what is this"},{"type":"image_url","image_url":{"url":"data:image/png;base64,iVBORw0KGgo=","detail":"low"}}]}],"tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}}],"tool_choice":"auto","response_format":{"type":"json_object"},"logit_bias":{"50256":-100},"seed":98765432109876543210,"n":1,"stop":["\n\n"],"logprobs":true,"top_logprobs":2,"temperature":0.70,"top_p":1.0,"frequency_penalty":0,"user":"end-user-1","repetition_penalty":1.05,"vendor_ext":{"nested":[1,2.50,null]}}
                """#
            let reply = try await gateway.post("/v1/chat/completions", body)
            #expect(reply.status == 200)
            guard case .object(var expected) = try JSONValue.parse(body) else { return }
            expected["model"] = "upstream-m"
            #expect(gateway.lastUpstreamBody == .object(expected))
            #expect(gateway.upstream.requests.last?.header("authorization") == "Bearer upstream-secret")
        }
    }

    @Test func responseCarriesTheGatewaysIdAndPublicModelName() async throws {
        try await GatewayHarness.run { gateway in
            let reply = try await gateway.post("/v1/chat/completions", chat("m-alias"))
            #expect(reply.status == 200)
            #expect(reply.header("content-type") == "application/json")
            let json = reply.json
            #expect(json["model"] == "m")
            let id = try #require(json["id"]?.stringValue)
            #expect(id.hasPrefix("chatcmpl-") && !id.contains("fake"))
            #expect(json["object"] == "chat.completion")
            #expect(json["system_fingerprint"] == "fp_fake")
            #expect(json["choices"]?.arrayValue?.first?["message"]?["content"] == "w1 w2 w3 w4 w5 w6 w7 w8")
            #expect(json["usage"]?["completion_tokens"] == 8)
            #expect(gateway.lastUpstreamBody["stream"] == false)
        }
    }

    @Test func toolCallsComeBackWhole() async throws {
        try await GatewayHarness.run { gateway in
            let tools = #""tools":[{"type":"function","function":{"name":"get_weather","parameters":{}}}],"fake":{"tool_call":true}"#
            let reply = try await gateway.post("/v1/chat/completions", chat("m", extra: tools))
            let choice = reply.json["choices"]?.arrayValue?.first
            #expect(choice?["finish_reason"] == "tool_calls")
            let call = choice?["message"]?["tool_calls"]?.arrayValue?.first
            #expect(call?["function"]?["name"] == "get_weather")
            #expect(call?["function"]?["arguments"] == #"{"x":1,"y":"two"}"#)
        }
    }

    @Test func completionsAndEmbeddingsAreRelayed() async throws {
        try await GatewayHarness.run { gateway in
            let completion = try await gateway.post("/v1/completions", #"{"model":"m","prompt":"say","max_tokens":3}"#)
            #expect(completion.status == 200)
            #expect(completion.json["object"] == "text_completion")
            #expect(completion.json["id"]?.stringValue?.hasPrefix("cmpl-") == true)
            #expect(completion.json["model"] == "m")
            #expect(gateway.upstream.requests.last?.path == "/v1/completions")

            let embedding = try await gateway.post(
                "/v1/embeddings", #"{"model":"emb","input":["a","b"],"encoding_format":"float"}"#)
            #expect(embedding.status == 200)
            #expect(embedding.json["model"] == "emb")
            #expect(embedding.json["data"]?.arrayValue?.count == 2)
            #expect(gateway.lastUpstreamBody["model"] == "upstream-emb")

            let wrongEndpoint = try await gateway.post("/v1/chat/completions", chat("emb"))
            #expect(wrongEndpoint.status == 400)
        }
    }

    @Test func aStreamOnlyUpstreamIsAssembledForAWholeAnswer() async throws {
        try await GatewayHarness.run { gateway in
            let reply = try await gateway.post("/v1/chat/completions", chat("m-always", extra: #""fake":{"tokens":4}"#))
            #expect(reply.status == 200)
            #expect(gateway.lastUpstreamBody["stream"] == true)
            #expect(gateway.lastUpstreamBody["stream_options"]?["include_usage"] == true)
            let json = reply.json
            #expect(json["object"] == "chat.completion")
            #expect(json["model"] == "m-always")
            #expect(json["choices"]?.arrayValue?.first?["message"]?["content"] == "w1 w2 w3 w4")
            #expect(json["choices"]?.arrayValue?.first?["finish_reason"] == "stop")
            #expect(json["usage"]?["completion_tokens"] == 4)

            let tools = #""tools":[{"type":"function","function":{"name":"lookup","parameters":{}}}],"fake":{"tool_call":true}"#
            let call = try await gateway.post("/v1/chat/completions", chat("m-always", extra: tools))
            let message = call.json["choices"]?.arrayValue?.first?["message"]
            #expect(message?["tool_calls"]?.arrayValue?.first?["function"]?["arguments"] == #"{"x":1,"y":"two"}"#)
            #expect(message?["tool_calls"]?.arrayValue?.first?["id"] == "call_fake1")
        }
    }

    @Test func theBuiltInTestModelAnswersOffline() async throws {
        try await GatewayHarness.run { gateway in
            let reply = try await gateway.post("/v1/chat/completions", chat("demo"))
            #expect(reply.json["usage"]?["completion_tokens"] == 5)
            #expect(reply.json["choices"]?.arrayValue?.first?["message"]?["content"] == "This is Switchyard's built-in test")
        }
    }

    @Test func modelsAreListedAndLookedUpByNameOrAlias() async throws {
        try await GatewayHarness.run { gateway in
            let list = try await gateway.get("/v1/models")
            #expect(list.json["object"] == "list")
            #expect(list.json["data"]?.arrayValue?.compactMap { $0["id"]?.stringValue }.contains("m-nostream") == true)
            let one = try await gateway.get("/v1/models/m-alias")
            #expect(one.json["id"] == "m")
            #expect(one.json["object"] == "model")
            #expect(one.json["aliases"] == .array(["m-alias"]))
            let missing = try await gateway.get("/v1/models/nope")
            #expect(missing.status == 404)
            #expect(missing.json["error"]?["code"] == "model_not_found")
        }
    }
}
