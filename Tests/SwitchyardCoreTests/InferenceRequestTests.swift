import Testing

@testable import SwitchyardCore

@Suite struct InferenceRequestTests {
    func parse(_ text: String, _ endpoint: Endpoint = .chatCompletions) throws(GatewayError) -> InferenceRequest {
        try InferenceRequest(endpoint: endpoint, bytes: Array(text.utf8))
    }

    func error(_ text: String, _ endpoint: Endpoint = .chatCompletions) -> GatewayError? {
        do {
            _ = try parse(text, endpoint)
            return nil
        } catch {
            return error
        }
    }

    @Test func readsModelStreamAndUsageFlag() throws {
        let request = try parse(
            #"{"model":"qwen","messages":[{"role":"user","content":"hi"}],"stream":true,"stream_options":{"include_usage":true}}"#)
        #expect(request.model == "qwen")
        #expect(request.stream)
        #expect(request.includeUsage)
    }

    @Test func aRelayedRequestKeepsWhatTheRelayReadsAndNotTheContent() throws {
        let prompt = String(repeating: "context ", count: 8_192)
        var request = try parse(
            #"{"model":"qwen","messages":[{"role":"user","content":"\#(prompt)"}],"stream":true,"#
                + #""stream_options":{"include_usage":true},"tools":[{"type":"function"}]}"#)
        request.original = request.body
        for keepingMessages in [false, true] {
            let relayed = request.relayed(keepingMessages: keepingMessages)
            #expect(relayed.endpoint == request.endpoint && relayed.dialect == request.dialect)
            #expect(relayed.model == "qwen" && relayed.stream && relayed.includeUsage)
            #expect(relayed.original == nil && relayed.form == nil)
            #expect(relayed.body["tools"] == nil && relayed.body["model"] == nil)
            #expect((relayed.body["messages"] != nil) == keepingMessages)
            if keepingMessages { #expect(relayed.body["messages"] == request.body["messages"]) }
        }
    }

    @Test func missingAndWronglyTypedFieldsAreNamed() {
        #expect(error(#"{"messages":[{"role":"user"}]}"#)?.param == "model")
        #expect(error(#"{"model":"m"}"#)?.code == "missing_required_parameter")
        #expect(error(#"{"model":"m","messages":"hi"}"#)?.code == "invalid_type")
        #expect(error(#"{"model":3,"messages":[{"role":"user"}]}"#)?.param == "model")
        #expect(error(#"{"model":"m","messages":[{"role":"user"}],"stream":"yes"}"#)?.param == "stream")
        #expect(error(#"{"model":"m","messages":[{"role":"user"}],"max_tokens":1.5}"#)?.param == "max_tokens")
        #expect(error(#"{"model":"m","messages":[{"content":"x"}]}"#)?.param == "messages[0].role")
        #expect(error(#"{"model":"m","messages":[{"role":"user"}],"stream_options":{"include_usage":true}}"#)?.param
            == "stream_options")
        #expect(error(#"[1]"#)?.httpStatus == 400)
        #expect(error(#"{"model":"m","input":"x","stream":true}"#, .embeddings)?.param == "stream")
        #expect(error(#"{"model":"m"}"#, .completions)?.param == "prompt")
    }
}
