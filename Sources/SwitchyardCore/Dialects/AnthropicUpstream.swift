/// Chat completions to and from an upstream that speaks Anthropic Messages (provider kind
/// `anthropic`): the request translated to Messages, the answer and the stream's events back to chat
/// completions, usage mapped exactly (cache reads and writes counted as prompt tokens, and reported
/// in `prompt_tokens_details`).
public enum AnthropicUpstream {
    /// The Messages body for a chat completions body. `defaultMaxTokens` fills Anthropic's required
    /// `max_tokens` when the caller set no limit.
    public static func messagesBody(fromChat chat: JSONObject, defaultMaxTokens: Int) -> JSONObject {
        var body = JSONObject()
        body["model"] = chat["model"]
        var system: [String] = []
        var messages: [JSONObject] = []

        func append(role: String, blocks: [JSONValue]) {
            guard !blocks.isEmpty else { return }
            if var last = messages.last, last["role"]?.stringValue == role {
                last["content"] = .array((last["content"]?.arrayValue ?? []) + blocks)
                messages[messages.count - 1] = last
            } else {
                messages.append(["role": .string(role), "content": .array(blocks)])
            }
        }

        for message in chat["messages"]?.arrayValue ?? [] {
            let role = message["role"]?.stringValue ?? "user"
            let content = message["content"]
            switch role {
            case "system", "developer":
                system.append(Translate.text(of: content, separator: "\n"))
            case "assistant":
                var blocks: [JSONValue] = []
                let text = Translate.text(of: content)
                if !text.isEmpty { blocks.append(.object(["type": "text", "text": .string(text)])) }
                for call in message["tool_calls"]?.arrayValue ?? [] {
                    blocks.append(
                        .object([
                            "type": "tool_use", "id": call["id"] ?? "", "name": call["function"]?["name"] ?? "",
                            "input": Translate.object(fromArguments: call["function"]?["arguments"]?.stringValue ?? "{}"),
                        ]))
                }
                append(role: "assistant", blocks: blocks)
            case "tool", "function":
                append(
                    role: "user",
                    blocks: [
                        .object([
                            "type": "tool_result", "tool_use_id": message["tool_call_id"] ?? "",
                            "content": .string(Translate.text(of: content, separator: "\n")),
                        ])
                    ])
            default:
                append(role: "user", blocks: userBlocks(content))
            }
        }
        if !system.isEmpty { body["system"] = .string(system.joined(separator: "\n\n")) }
        body["messages"] = .array(messages.map(JSONValue.object))
        body["max_tokens"] = chat["max_completion_tokens"] ?? chat["max_tokens"] ?? .int(defaultMaxTokens)
        if let stop = chat["stop"], !stop.isNull {
            body["stop_sequences"] = stop.stringValue.map { .array([.string($0)]) } ?? stop
        }
        for name in ["temperature", "top_p"] {
            if let value = chat[name], !value.isNull { body[name] = value }
        }
        if let user = chat["user"]?.stringValue { body["metadata"] = .object(["user_id": .string(user)]) }
        if let tools = chat["tools"]?.arrayValue, !tools.isEmpty {
            body["tools"] = .array(
                tools.compactMap { tool -> JSONValue? in
                    guard let function = tool["function"] else { return nil }
                    var object: JSONObject = ["name": function["name"] ?? ""]
                    if let description = function["description"] { object["description"] = description }
                    object["input_schema"] = function["parameters"] ?? .object(["type": "object", "properties": .object([:])])
                    return .object(object)
                })
            var choice: JSONObject?
            switch chat["tool_choice"] {
            case .string("required")?: choice = ["type": "any"]
            case .string("none")?: choice = ["type": "none"]
            case .object(let object)?:
                choice = ["type": "tool", "name": object["function"]?["name"] ?? ""]
            case .string("auto")?: choice = ["type": "auto"]
            default: choice = nil
            }
            if chat["parallel_tool_calls"]?.boolValue == false {
                choice = choice ?? ["type": "auto"]
                choice?["disable_parallel_tool_use"] = true
            }
            if let choice { body["tool_choice"] = .object(choice) }
        }
        if chat["stream"]?.boolValue == true { body["stream"] = true }
        return body
    }

    static func userBlocks(_ content: JSONValue?) -> [JSONValue] {
        switch content {
        case .string(let text)?: return [.object(["type": "text", "text": .string(text)])]
        case .array(let parts)?:
            return parts.compactMap { part -> JSONValue? in
                switch part["type"]?.stringValue {
                case "text": return .object(["type": "text", "text": part["text"] ?? ""])
                case "image_url":
                    let url = part["image_url"]?["url"]?.stringValue ?? ""
                    if let (media, data) = Translate.dataURL(url) {
                        return .object([
                            "type": "image",
                            "source": .object(["type": "base64", "media_type": .string(media), "data": .string(data)]),
                        ])
                    }
                    return .object(["type": "image", "source": .object(["type": "url", "url": .string(url)])])
                case "file":
                    let data = part["file"]?["file_data"]?.stringValue ?? ""
                    guard let (media, payload) = Translate.dataURL(data) else { return nil }
                    return .object([
                        "type": "document",
                        "source": .object(["type": "base64", "media_type": .string(media), "data": .string(payload)]),
                    ])
                default: return nil
                }
            }
        default: return []
        }
    }

    /// Anthropic's `usage` as chat's: every input token (cache reads and writes too) is a prompt token.
    public static func usage(_ usage: JSONValue?) -> Usage? {
        guard let usage, let input = usage["input_tokens"]?.intValue else { return nil }
        let read = usage["cache_read_input_tokens"]?.intValue ?? 0
        let write = usage["cache_creation_input_tokens"]?.intValue ?? 0
        return Usage(
            promptTokens: input + read + write, completionTokens: usage["output_tokens"]?.intValue ?? 0,
            cachedTokens: read, cacheWriteTokens: write)
    }

    /// `usage` after a `message_delta`'s: Anthropic reports usage cumulatively, so the newest count of
    /// each kind replaces the one before; nothing is added twice (TensorZero #5481 summed them).
    public static func updated(_ usage: Usage, by reported: JSONValue) -> Usage {
        var current = usage
        if let output = reported["output_tokens"]?.intValue { current.completionTokens = output }
        if reported["input_tokens"]?.intValue != nil, let whole = Self.usage(reported) {
            current.promptTokens = whole.promptTokens
            current.cachedTokens = whole.cachedTokens
            current.cacheWriteTokens = whole.cacheWriteTokens
        }
        return current
    }

    /// Chat's `finish_reason` for Anthropic's `stop_reason`.
    public static func finishReason(_ stopReason: String?) -> String {
        switch stopReason {
        case "max_tokens": "length"
        case "tool_use": "tool_calls"
        case "refusal": "content_filter"
        default: "stop"
        }
    }

    /// A whole message as a chat completion.
    public static func chatCompletion(fromMessage message: JSONObject, created: Int) -> JSONObject {
        var text = ""
        var reasoning = ""
        var calls: [JSONValue] = []
        for block in message["content"]?.arrayValue ?? [] {
            switch block["type"]?.stringValue {
            case "text": text += block["text"]?.stringValue ?? ""
            case "thinking": reasoning += block["thinking"]?.stringValue ?? ""
            case "tool_use":
                calls.append(
                    .object([
                        "id": block["id"] ?? "", "type": "function",
                        "function": .object([
                            "name": block["name"] ?? "",
                            "arguments": .string((block["input"] ?? .object([:])).serializedString()),
                        ]),
                    ]))
            default: continue
            }
        }
        var chatMessage: JSONObject = [
            "role": "assistant", "content": text.isEmpty && !calls.isEmpty ? .null : .string(text), "refusal": nil,
        ]
        if !reasoning.isEmpty { chatMessage["reasoning_content"] = .string(reasoning) }
        if !calls.isEmpty { chatMessage["tool_calls"] = .array(calls) }
        var object: JSONObject = [
            "id": message["id"] ?? "", "object": "chat.completion", "created": .int(created),
            "model": message["model"] ?? "",
            "choices": .array([
                .object([
                    "index": 0, "message": .object(chatMessage), "logprobs": nil,
                    "finish_reason": .string(finishReason(message["stop_reason"]?.stringValue)),
                ])
            ]),
        ]
        if let usage = usage(message["usage"]) { object["usage"] = usage.json }
        return object
    }

    /// Whether an event payload is the last of a Messages stream (`message_stop`).
    @Sendable public static func isTerminal(_ payload: [UInt8]) -> Bool {
        // `{"type":"message_stop"}` is short: only short payloads are parsed.
        guard payload.count < 256, case .object(let event)? = try? JSONValue.parse(payload) else { return false }
        return event["type"] == "message_stop"
    }
}

/// Reads the events of a Messages stream and says what each means as chat completion chunks, with
/// usage taken once from where Anthropic reports it: `message_start` (input and cache tokens) and
/// `message_delta` (cumulative: each replaces the last, none is added to another).
public struct AnthropicStreamDecoder: Sendable {
    let created: Int
    private var id = ""
    private var model = ""
    private var usage = Usage(promptTokens: 0, completionTokens: 0)
    private var sawUsage = false
    private var stopReason: String?
    /// Content block index → chat tool call index.
    private var toolIndex: [Int: Int] = [:]

    public init(created: Int) {
        self.created = created
    }

    /// The chat chunks (as JSON payloads) for one event; an `error` event becomes `{"error":{…}}`.
    public mutating func decode(_ event: JSONObject) -> [JSONObject] {
        switch event["type"]?.stringValue {
        case "message_start":
            let message = event["message"]
            id = message?["id"]?.stringValue ?? id
            model = message?["model"]?.stringValue ?? model
            if let reported = AnthropicUpstream.usage(message?["usage"]) {
                usage = reported
                sawUsage = true
            }
            return [chunk(delta: ["role": "assistant", "content": ""])]
        case "content_block_start":
            let block = event["content_block"]
            let index = event["index"]?.intValue ?? 0
            guard block?["type"]?.stringValue == "tool_use" else {
                if let text = block?["text"]?.stringValue, !text.isEmpty { return [chunk(delta: ["content": .string(text)])] }
                return []
            }
            let callIndex = toolIndex.count
            toolIndex[index] = callIndex
            return [
                chunk(delta: [
                    "tool_calls": .array([
                        .object([
                            "index": .int(callIndex), "id": block?["id"] ?? "", "type": "function",
                            "function": .object(["name": block?["name"] ?? "", "arguments": ""]),
                        ])
                    ])
                ])
            ]
        case "content_block_delta":
            let delta = event["delta"]
            switch delta?["type"]?.stringValue {
            case "text_delta": return [chunk(delta: ["content": delta?["text"] ?? ""])]
            case "thinking_delta": return [chunk(delta: ["reasoning_content": delta?["thinking"] ?? ""])]
            case "input_json_delta":
                let callIndex = toolIndex[event["index"]?.intValue ?? 0] ?? 0
                return [
                    chunk(delta: [
                        "tool_calls": .array([
                            .object([
                                "index": .int(callIndex), "function": .object(["arguments": delta?["partial_json"] ?? ""]),
                            ])
                        ])
                    ])
                ]
            default: return []
            }
        case "message_delta":
            if let reason = event["delta"]?["stop_reason"]?.stringValue { stopReason = reason }
            if let reported = event["usage"] {
                usage = AnthropicUpstream.updated(usage, by: reported)
                sawUsage = true
            }
            return []
        case "message_stop":
            var finish = chunk(delta: [:])
            finish["choices"] = .array([
                .object([
                    "index": 0, "delta": .object([:]), "logprobs": nil,
                    "finish_reason": .string(AnthropicUpstream.finishReason(stopReason)),
                ])
            ])
            guard sawUsage else { return [finish] }
            var usageChunk = chunk(delta: [:])
            usageChunk["choices"] = .array([])
            usageChunk["usage"] = usage.json
            return [finish, usageChunk]
        case "error":
            let error = event["error"]?.objectValue ?? ["message": "The upstream failed."]
            return [["error": .object(error)]]
        default:
            return []  // ping
        }
    }

    private func chunk(delta: JSONObject) -> JSONObject {
        [
            "id": .string(id), "object": "chat.completion.chunk", "created": .int(created), "model": .string(model),
            "choices": .array([.object(["index": 0, "delta": .object(delta), "logprobs": nil, "finish_reason": nil])]),
        ]
    }
}
