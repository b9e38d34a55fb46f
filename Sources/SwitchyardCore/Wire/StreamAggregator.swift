/// Assembles an upstream's stream chunks into the one response a non-streaming client expects:
/// content and refusal text, tool calls merged by index, logprobs, finish reasons and usage.
public struct StreamAggregator: Sendable {
    struct ToolCall: Sendable {
        var id: JSONValue = .null
        var type: JSONValue = .string("function")
        var name = ""
        var arguments = ""
    }

    struct Choice: Sendable {
        var role = "assistant"
        var text: String?
        var refusal: String?
        var toolCalls: [Int: ToolCall] = [:]
        var logprobContent: [JSONValue]?
        var completionLogprobs: JSONObject?
        var finishReason: JSONValue = .null
    }

    public let endpoint: Endpoint
    private var choices: [Int: Choice] = [:]
    private var created: JSONValue?
    private var systemFingerprint: JSONValue?
    private var serviceTier: JSONValue?
    public private(set) var usage: Usage?
    /// Chunks that carried output and its bytes, for metering when the upstream reports no usage.
    public private(set) var outputChunks = 0
    public private(set) var outputBytes = 0

    public init(endpoint: Endpoint) {
        self.endpoint = endpoint
    }

    /// The finish reason of the first choice, once known.
    public var finishReason: String? { choices[0]?.finishReason.stringValue }

    public mutating func add(_ chunk: JSONObject) {
        if created == nil { created = chunk["created"] }
        if let value = chunk["system_fingerprint"], !value.isNull { systemFingerprint = value }
        if let value = chunk["service_tier"], !value.isNull { serviceTier = value }
        if let reported = Usage(chunk["usage"]) { usage = reported }
        for element in chunk["choices"]?.arrayValue ?? [] {
            guard let piece = element.objectValue else { continue }
            let bytes = OutputMeasure.bytes(ofChunkChoice: element)
            if bytes > 0 {
                outputChunks += 1
                outputBytes += bytes
            }
            let index = piece["index"]?.intValue ?? 0
            var choice = choices[index] ?? Choice()
            merge(piece, into: &choice)
            choices[index] = choice
        }
    }

    private mutating func merge(_ piece: JSONObject, into choice: inout Choice) {
        if let reason = piece["finish_reason"], !reason.isNull {
            choice.finishReason = reason
        }
        if let text = piece["text"]?.stringValue { choice.text = (choice.text ?? "") + text }
        if let logprobs = piece["logprobs"]?.objectValue {
            if let content = logprobs["content"]?.arrayValue {
                choice.logprobContent = (choice.logprobContent ?? []) + content
            } else if endpoint.output == .text {
                choice.completionLogprobs = StreamAggregator.appendArrays(choice.completionLogprobs, logprobs)
            }
        }
        guard let delta = piece["delta"]?.objectValue else { return }
        if let role = delta["role"]?.stringValue { choice.role = role }
        if let content = delta["content"]?.stringValue { choice.text = (choice.text ?? "") + content }
        if let refusal = delta["refusal"]?.stringValue { choice.refusal = (choice.refusal ?? "") + refusal }
        for element in delta["tool_calls"]?.arrayValue ?? [] {
            let index = element["index"]?.intValue ?? 0
            var call = choice.toolCalls[index] ?? ToolCall()
            if let id = element["id"], !id.isNull { call.id = id }
            if let type = element["type"], !type.isNull { call.type = type }
            if let name = element["function"]?["name"]?.stringValue { call.name += name }
            if let arguments = element["function"]?["arguments"]?.stringValue { call.arguments += arguments }
            choice.toolCalls[index] = call
        }
    }

    /// Completions logprobs are parallel arrays (`tokens`, `token_logprobs`, …): each chunk's are appended.
    private static func appendArrays(_ base: JSONObject?, _ next: JSONObject) -> JSONObject {
        guard var merged = base else { return next }
        for member in next.members {
            if case .array(let more) = member.value, case .array(let existing)? = merged[member.key] {
                merged[member.key] = .array(existing + more)
            } else {
                merged[member.key] = member.value
            }
        }
        return merged
    }

    /// What was assembled when the caller stopped the request: open choices finish with "stop", the
    /// response carries `"end_reason": "cancelled"` and the usage that was billed.
    public func cancelledResponse(identity: ResponseIdentity, usage: Usage) -> JSONObject {
        var partial = self
        if partial.choices.isEmpty { partial.choices[0] = Choice(text: "") }
        for index in partial.choices.keys where partial.choices[index]?.finishReason.isNull == true {
            partial.choices[index]?.finishReason = "stop"
        }
        partial.usage = usage
        var object = partial.response(identity: identity)
        object["end_reason"] = "cancelled"
        return object
    }

    /// The whole response, stamped with the gateway's identity.
    public func response(identity: ResponseIdentity) -> JSONObject {
        var object = JSONObject([
            "id": .string(identity.id),
            "object": .string(endpoint.responseObject),
            "created": created ?? .int(identity.created),
            "model": .string(identity.model),
        ])
        let indices = choices.keys.sorted()
        object["choices"] = .array(indices.compactMap { index in choices[index].map { render($0, index: index) } })
        if let usage { object["usage"] = usage.json }
        if let systemFingerprint { object["system_fingerprint"] = systemFingerprint }
        if let serviceTier { object["service_tier"] = serviceTier }
        return object
    }

    private func render(_ choice: Choice, index: Int) -> JSONValue {
        if endpoint.output == .text {
            return .object(
                JSONObject([
                    "index": .int(index),
                    "text": .string(choice.text ?? ""),
                    "logprobs": choice.completionLogprobs.map(JSONValue.object) ?? .null,
                    "finish_reason": choice.finishReason,
                ]))
        }
        var message = JSONObject([
            "role": .string(choice.role),
            "content": choice.text.map(JSONValue.string) ?? .null,
            "refusal": choice.refusal.map(JSONValue.string) ?? .null,
        ])
        if !choice.toolCalls.isEmpty {
            message["tool_calls"] = .array(
                choice.toolCalls.keys.sorted().compactMap { key in
                    guard let call = choice.toolCalls[key] else { return nil }
                    return .object(
                        JSONObject([
                            "id": call.id,
                            "type": call.type,
                            "function": .object(
                                JSONObject(["name": .string(call.name), "arguments": .string(call.arguments)])),
                        ]))
                })
        }
        return .object(
            JSONObject([
                "index": .int(index),
                "message": .object(message),
                "logprobs": choice.logprobContent.map { .object(JSONObject(["content": .array($0), "refusal": .null])) }
                    ?? .null,
                "finish_reason": choice.finishReason,
            ]))
    }
}
