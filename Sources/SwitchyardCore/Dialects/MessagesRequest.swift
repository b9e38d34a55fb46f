/// An Anthropic Messages request (`POST /v1/messages`) as the chat completions request the gateway
/// relays, for upstreams that do not speak Messages. `thinking`, `top_k`, `cache_control` and
/// server tools have no chat completions equivalent: the first three are dropped (they tune, they do
/// not change what is asked), server tools are refused.
public enum MessagesRequest {
    /// `lenient`: the request will most likely be passed through to an Anthropic upstream; what
    /// cannot be translated is left out of the chat body (the estimate's and the hold's) instead of refused.
    public static func chatBody(from body: JSONObject, lenient: Bool = false) throws(GatewayError) -> JSONObject {
        try validate(body)
        var chat = JSONObject()
        if let model = body["model"] { chat["model"] = model }
        var messages: [JSONValue] = []
        if let system = body["system"], !system.isNull {
            let text: String
            switch system {
            case .string(let value): text = value
            case .array: text = Translate.text(of: system, separator: "\n\n")
            default: throw .invalidType("system", expected: "a string or an array of text blocks", got: system)
            }
            messages.append(.object(["role": "system", "content": .string(text)]))
        }
        for (index, message) in (body["messages"]?.arrayValue ?? []).enumerated() {
            try appendMessage(message, param: "messages.\(index)", lenient: lenient, to: &messages)
        }
        chat["messages"] = .array(messages)
        chat["max_tokens"] = body["max_tokens"]
        if let stops = body["stop_sequences"], !stops.isNull { chat["stop"] = stops }
        for name in ["temperature", "top_p", "stream"] {
            if let value = body[name], !value.isNull { chat[name] = value }
        }
        if let user = body["metadata"]?["user_id"], !user.isNull { chat["user"] = user }
        if let tools = body["tools"]?.arrayValue, !tools.isEmpty {
            var functions: [JSONValue] = []
            for (index, tool) in tools.enumerated() {
                do {
                    functions.append(try chatTool(tool, param: "tools.\(index)"))
                } catch where lenient {}
            }
            if !functions.isEmpty { chat["tools"] = .array(functions) }
        }
        if let choice = body["tool_choice"]?.objectValue {
            switch choice["type"]?.stringValue {
            case "auto": chat["tool_choice"] = "auto"
            case "any": chat["tool_choice"] = "required"
            case "none": chat["tool_choice"] = "none"
            case "tool":
                chat["tool_choice"] = .object(["type": "function", "function": .object(["name": choice["name"] ?? ""])])
            default: throw .invalidValue("tool_choice.type", "Invalid 'tool_choice.type'.")
            }
            if choice["disable_parallel_tool_use"]?.boolValue == true, chat["tools"] != nil {
                chat["parallel_tool_calls"] = false
            }
        }
        return chat
    }

    /// The checks Anthropic makes that the gateway relies on: a model, `max_tokens`, messages.
    public static func validate(_ body: JSONObject) throws(GatewayError) {
        guard let limit = body["max_tokens"], !limit.isNull else { throw .missingParameter("max_tokens") }
        guard let value = limit.intValue else { throw .invalidType("max_tokens", expected: "an integer", got: limit) }
        guard value >= 1 else { throw .invalidValue("max_tokens", "max_tokens: must be greater than or equal to 1") }
        guard let messages = body["messages"], !messages.isNull else { throw .missingParameter("messages") }
        guard let list = messages.arrayValue else { throw .invalidType("messages", expected: "an array", got: messages) }
        for (index, message) in list.enumerated() {
            guard let role = message["role"]?.stringValue else { throw .missingParameter("messages.\(index).role") }
            // `system` turns inside `messages` are what Claude Code sends (its environment notes).
            guard role == "user" || role == "assistant" || role == "system" else {
                throw .invalidValue("messages.\(index).role", "messages.\(index).role: must be 'user', 'assistant' or 'system'")
            }
        }
    }

    static func appendMessage(
        _ message: JSONValue, param: String, lenient: Bool, to messages: inout [JSONValue]
    ) throws(GatewayError) {
        let role = message["role"]?.stringValue ?? "user"
        guard let content = message["content"] else { throw .missingParameter("\(param).content") }
        if role == "system" {
            messages.append(.object(["role": "system", "content": .string(Translate.text(of: content, separator: "\n\n"))]))
            return
        }
        if let text = content.stringValue {
            messages.append(.object(["role": .string(role), "content": .string(text)]))
            return
        }
        guard let blocks = content.arrayValue else {
            throw .invalidType("\(param).content", expected: "a string or an array", got: content)
        }
        if role == "assistant" {
            var text = ""
            var calls: [JSONValue] = []
            for block in blocks {
                switch block["type"]?.stringValue {
                case "text": text += block["text"]?.stringValue ?? ""
                case "tool_use":
                    let input = block["input"] ?? .object([:])
                    let arguments = input.objectValue != nil ? input.serializedString() : "{}"
                    calls.append(
                        .object([
                            "id": block["id"] ?? "", "type": "function",
                            "function": .object(["name": block["name"] ?? "", "arguments": .string(arguments)]),
                        ]))
                default: continue  // thinking blocks: chat completions have no place for them
                }
            }
            var object: JSONObject = ["role": "assistant", "content": text.isEmpty && !calls.isEmpty ? .null : .string(text)]
            if !calls.isEmpty { object["tool_calls"] = .array(calls) }
            messages.append(.object(object))
            return
        }
        // A user turn: tool results first (chat wants them right after the assistant's calls), then
        // the rest as one user message.
        var parts: [JSONValue] = []
        for (index, block) in blocks.enumerated() {
            let blockParam = "\(param).content.\(index)"
            switch block["type"]?.stringValue {
            case "text":
                parts.append(.object(["type": "text", "text": block["text"] ?? ""]))
            case "image":
                do {
                    parts.append(try imagePart(block, param: blockParam))
                } catch where lenient {}
            case "document":
                if let source = block["source"], source["type"]?.stringValue == "base64" {
                    let media = source["media_type"]?.stringValue ?? "application/pdf"
                    let data = source["data"]?.stringValue ?? ""
                    parts.append(
                        .object(["type": "file", "file": .object(["file_data": .string("data:\(media);base64,\(data)")])]))
                } else if let source = block["source"], source["type"]?.stringValue == "text" {
                    parts.append(.object(["type": "text", "text": source["data"] ?? ""]))
                } else if !lenient {
                    throw .unsupported("This document source cannot be translated to chat completions.", param: blockParam)
                }
            case "tool_result":
                var content = Translate.text(of: block["content"], separator: "\n")
                if block["is_error"]?.boolValue == true { content = "Error: " + content }
                messages.append(
                    .object(["role": "tool", "tool_call_id": block["tool_use_id"] ?? "", "content": .string(content)]))
            case "thinking", "redacted_thinking":
                continue
            default:
                if lenient { continue }
                throw .unsupported(
                    "Content blocks of type '\(block["type"]?.stringValue ?? "")' cannot be translated to chat completions.",
                    param: blockParam)
            }
        }
        guard !parts.isEmpty else { return }
        if parts.count == 1, let text = parts[0]["text"]?.stringValue, parts[0]["type"] == "text" {
            messages.append(.object(["role": "user", "content": .string(text)]))
        } else {
            messages.append(.object(["role": "user", "content": .array(parts)]))
        }
    }

    static func imagePart(_ block: JSONValue, param: String) throws(GatewayError) -> JSONValue {
        let source = block["source"]
        let url: String
        switch source?["type"]?.stringValue {
        case "base64":
            url = "data:\(source?["media_type"]?.stringValue ?? "image/png");base64,\(source?["data"]?.stringValue ?? "")"
        case "url":
            url = source?["url"]?.stringValue ?? ""
        default:
            throw .unsupported("This image source cannot be translated to chat completions.", param: param)
        }
        return .object(["type": "image_url", "image_url": .object(["url": .string(url)])])
    }

    static func chatTool(_ tool: JSONValue, param: String) throws(GatewayError) -> JSONValue {
        guard let object = tool.objectValue else { throw .invalidType(param, expected: "an object", got: tool) }
        if let type = object["type"]?.stringValue, type != "custom" {
            throw .unsupported(
                "Server tools ('\(type)') run inside Anthropic's service and cannot be served by this model.", param: param)
        }
        guard let name = object["name"], !name.isNull else { throw .missingParameter("\(param).name") }
        var function: JSONObject = ["name": name]
        if let description = object["description"], !description.isNull { function["description"] = description }
        function["parameters"] = object["input_schema"] ?? .object(["type": "object"])
        return .object(["type": "function", "function": .object(function)])
    }
}
