/// Chat completion answers as Anthropic Messages: the whole message and the stream's events.
public enum MessagesAnswer {
    /// Anthropic's `stop_reason` for a chat `finish_reason`.
    public static func stopReason(_ finishReason: String?) -> String {
        switch finishReason {
        case "length": "max_tokens"
        case "tool_calls", "function_call": "tool_use"
        case "content_filter": "refusal"
        default: "end_turn"
        }
    }

    /// Anthropic's `usage` for chat's: cache reads and writes apart from the other input tokens, as
    /// Anthropic reports them (its `input_tokens` excludes both).
    public static func usage(_ usage: Usage) -> JSONObject {
        [
            "input_tokens": .int(max(0, usage.promptTokens - usage.cachedTokens - usage.cacheWriteTokens)),
            "cache_creation_input_tokens": .int(usage.cacheWriteTokens),
            "cache_read_input_tokens": .int(usage.cachedTokens),
            "output_tokens": .int(usage.completionTokens),
        ]
    }

    /// Anthropic's error body for an OpenAI-style error object (an Anthropic upstream's own `type`
    /// is kept).
    public static func errorBody(_ error: JSONObject) -> JSONObject {
        let known: Set<String> = [
            "invalid_request_error", "authentication_error", "billing_error", "permission_error", "not_found_error",
            "request_too_large", "rate_limit_error", "api_error", "overloaded_error", "timeout_error",
        ]
        var type = error["type"]?.stringValue ?? "api_error"
        if !known.contains(type) {
            switch error["code"]?.stringValue {
            case "upstream_overloaded", "engine_unavailable", "model_unavailable": type = "overloaded_error"
            case "rate_limit_exceeded": type = "rate_limit_error"
            case "upstream_timeout": type = "timeout_error"
            default: type = "api_error"
            }
        }
        return [
            "type": "error",
            "error": .object(["type": .string(type), "message": error["message"] ?? "The upstream failed."]),
        ]
    }

    /// A whole chat completion as a message.
    public static func message(fromChat chat: JSONObject, identity: ResponseIdentity, usage billed: Usage) -> JSONObject {
        let choice = chat["choices"]?.arrayValue?.first
        let message = choice?["message"]
        var content: [JSONValue] = []
        if let reasoning = message?["reasoning_content"]?.stringValue, !reasoning.isEmpty {
            content.append(.object(["type": "thinking", "thinking": .string(reasoning), "signature": ""]))
        }
        if let text = message?["content"]?.stringValue, !text.isEmpty {
            content.append(.object(["type": "text", "text": .string(text)]))
        }
        for call in message?["tool_calls"]?.arrayValue ?? [] {
            content.append(
                .object([
                    "type": "tool_use", "id": call["id"] ?? .string("toolu_" + ResponseIdentity.randomID()),
                    "name": call["function"]?["name"] ?? "",
                    "input": Translate.object(fromArguments: call["function"]?["arguments"]?.stringValue ?? "{}"),
                ]))
        }
        var object: JSONObject = [
            "id": .string(identity.id), "type": "message", "role": "assistant", "model": .string(identity.model),
            "content": .array(content),
            "stop_reason": .string(stopReason(choice?["finish_reason"]?.stringValue)), "stop_sequence": nil,
            "usage": .object(usage(Usage(chat["usage"]) ?? billed)),
        ]
        if let end = chat["end_reason"] { object["end_reason"] = end }
        return object
    }
}

/// Turns the chat chunks of one stream into Anthropic's events: `message_start` and a `ping`, then
/// per text and per tool call a content block (`content_block_start`, `_delta` with `text_delta` or
/// `input_json_delta`, `_stop`), then `message_delta` with the `stop_reason` and the whole usage
/// (cumulative, as Anthropic's own is), and `message_stop`; after an upstream failure an `error`
/// event instead.
public struct MessagesStreamEncoder: Sendable {
    enum Block: Sendable {
        case text
        case thinking
        case tool(chatIndex: Int)
    }

    let identity: ResponseIdentity
    /// The prompt tokens `message_start` announces before the upstream has said (its estimate);
    /// `message_delta` carries the exact count.
    let promptEstimate: Int
    private var started = false
    private var blockIndex = -1
    private var open: Block?
    private var finishReason: String?

    public init(identity: ResponseIdentity, promptEstimate: Int) {
        self.identity = identity
        self.promptEstimate = promptEstimate
    }

    public mutating func start(into out: inout [UInt8]) {
        guard !started else { return }
        started = true
        let message: JSONObject = [
            "id": .string(identity.id), "type": "message", "role": "assistant", "model": .string(identity.model),
            "content": .array([]), "stop_reason": nil, "stop_sequence": nil,
            "usage": .object([
                "input_tokens": .int(promptEstimate), "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0,
                "output_tokens": 0,
            ]),
        ]
        out.append(contentsOf: NamedSSE.event("message_start", ["type": "message_start", "message": .object(message)]))
        out.append(contentsOf: NamedSSE.event("ping", ["type": "ping"]))
    }

    public mutating func encode(_ chunk: JSONObject) -> [UInt8] {
        var out: [UInt8] = []
        start(into: &out)
        guard let choice = chunk["choices"]?.arrayValue?.first else { return out }
        let delta = choice["delta"]
        if let thinking = delta?["reasoning_content"]?.stringValue, !thinking.isEmpty {
            if case .thinking? = open {} else {
                openBlock(.thinking, ["type": "thinking", "thinking": "", "signature": ""], into: &out)
            }
            emitDelta(["type": "thinking_delta", "thinking": .string(thinking)], into: &out)
        }
        if let text = delta?["content"]?.stringValue, !text.isEmpty {
            if case .text? = open {} else { openBlock(.text, ["type": "text", "text": ""], into: &out) }
            emitDelta(["type": "text_delta", "text": .string(text)], into: &out)
        }
        for call in delta?["tool_calls"]?.arrayValue ?? [] {
            let index = call["index"]?.intValue ?? 0
            if case .tool(let openIndex)? = open, openIndex == index {} else {
                openBlock(
                    .tool(chatIndex: index),
                    [
                        "type": "tool_use", "id": call["id"] ?? .string("toolu_" + ResponseIdentity.randomID()),
                        "name": call["function"]?["name"] ?? "", "input": .object([:]),
                    ], into: &out)
            }
            if let piece = call["function"]?["arguments"]?.stringValue, !piece.isEmpty {
                emitDelta(["type": "input_json_delta", "partial_json": .string(piece)], into: &out)
            }
        }
        if let reason = choice["finish_reason"]?.stringValue { finishReason = reason }
        return out
    }

    private mutating func openBlock(_ block: Block, _ contentBlock: JSONObject, into out: inout [UInt8]) {
        closeBlock(into: &out)
        blockIndex += 1
        open = block
        out.append(
            contentsOf: NamedSSE.event(
                "content_block_start",
                ["type": "content_block_start", "index": .int(blockIndex), "content_block": .object(contentBlock)]))
    }

    private func emitDelta(_ delta: JSONObject, into out: inout [UInt8]) {
        out.append(
            contentsOf: NamedSSE.event(
                "content_block_delta", ["type": "content_block_delta", "index": .int(blockIndex), "delta": .object(delta)]))
    }

    private mutating func closeBlock(into out: inout [UInt8]) {
        guard open != nil else { return }
        open = nil
        out.append(
            contentsOf: NamedSSE.event("content_block_stop", ["type": "content_block_stop", "index": .int(blockIndex)]))
    }

    private mutating func end(stopReason: String, usage: Usage, extra: JSONObject = [:]) -> [UInt8] {
        var out: [UInt8] = []
        start(into: &out)
        closeBlock(into: &out)
        var event: JSONObject = [
            "type": "message_delta", "delta": .object(["stop_reason": .string(stopReason), "stop_sequence": nil]),
            "usage": .object(MessagesAnswer.usage(usage)),
        ]
        event.members.append(contentsOf: extra.members)
        out.append(contentsOf: NamedSSE.event("message_delta", event))
        out.append(contentsOf: NamedSSE.event("message_stop", ["type": "message_stop"]))
        return out
    }

    public mutating func finish(usage: Usage) -> [UInt8] {
        end(stopReason: MessagesAnswer.stopReason(finishReason), usage: usage)
    }

    /// A stream its caller stopped ends like a finished one, with `end_reason: "cancelled"` on the
    /// `message_delta`.
    public mutating func stopped(usage: Usage) -> [UInt8] {
        end(stopReason: "end_turn", usage: usage, extra: ["end_reason": "cancelled"])
    }

    /// `error` is the OpenAI-style error object the relay ends a failed stream with.
    public mutating func failed(_ error: JSONObject) -> [UInt8] {
        var out: [UInt8] = []
        start(into: &out)
        out.append(contentsOf: NamedSSE.event("error", MessagesAnswer.errorBody(error)))
        return out
    }
}

