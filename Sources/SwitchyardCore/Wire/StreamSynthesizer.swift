/// Turns a whole response from an upstream that cannot stream into the chunks a streaming client
/// expects, shaped as OpenAI's own streams are: per choice, one chunk with the role and all output,
/// one with the finish reason; then the usage chunk if the client asked for it.
public enum StreamSynthesizer {
    public static func chunks(
        from response: JSONObject,
        endpoint: Endpoint,
        identity: ResponseIdentity,
        includeUsage: Bool
    ) -> [JSONObject] {
        var header = JSONObject([
            "id": .string(identity.id),
            "object": .string(endpoint.chunkObject),
            "created": response["created"] ?? .int(identity.created),
            "model": .string(identity.model),
        ])
        if let fingerprint = response["system_fingerprint"] { header["system_fingerprint"] = fingerprint }
        if let tier = response["service_tier"] { header["service_tier"] = tier }

        func chunk(_ choice: JSONObject) -> JSONObject {
            var object = header
            object["choices"] = .array([.object(choice)])
            if includeUsage { object["usage"] = .null }
            return object
        }

        var chunks: [JSONObject] = []
        for element in response["choices"]?.arrayValue ?? [] {
            guard let choice = element.objectValue else { continue }
            let index = choice["index"] ?? .int(0)
            let finish = choice["finish_reason"] ?? .string("stop")
            if endpoint.output == .text {
                chunks.append(
                    chunk(
                        JSONObject([
                            "index": index, "text": choice["text"] ?? .string(""),
                            "logprobs": choice["logprobs"] ?? .null, "finish_reason": .null,
                        ])))
                chunks.append(
                    chunk(JSONObject(["index": index, "text": "", "logprobs": .null, "finish_reason": finish])))
                continue
            }
            let message = choice["message"]?.objectValue ?? JSONObject()
            var delta = JSONObject(["role": message["role"] ?? .string("assistant")])
            delta["content"] = message["content"] ?? .null
            if let refusal = message["refusal"], !refusal.isNull { delta["refusal"] = refusal }
            if let calls = message["tool_calls"]?.arrayValue {
                delta["tool_calls"] = .array(
                    calls.enumerated().map { position, call in
                        var indexed = JSONObject(["index": .int(position)])
                        indexed.members.append(contentsOf: call.objectValue?.members ?? [])
                        return .object(indexed)
                    })
            }
            if let function = message["function_call"], !function.isNull { delta["function_call"] = function }
            chunks.append(
                chunk(
                    JSONObject([
                        "index": index, "delta": .object(delta), "logprobs": choice["logprobs"] ?? .null,
                        "finish_reason": .null,
                    ])))
            chunks.append(
                chunk(
                    JSONObject([
                        "index": index, "delta": .object(JSONObject()), "logprobs": .null, "finish_reason": finish,
                    ])))
        }
        if includeUsage, let usage = response["usage"], !usage.isNull {
            var object = header
            object["choices"] = .array([])
            object["usage"] = usage
            chunks.append(object)
        }
        return chunks
    }
}
