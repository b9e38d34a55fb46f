/// An OpenAI Responses request (`POST /v1/responses`) as the chat completions request the gateway
/// relays. What has no chat equivalent is refused with a clear 400, never silently changed:
/// `previous_response_id` and `conversation` (Switchyard stores no responses: the caller sends the
/// history), `background`, stored prompts, item references and built-in tools.
public enum ResponsesRequest {
    /// Fields read here or accepted without effect (`store`: nothing is ever stored; `include`: there
    /// is nothing encrypted or stored to include; `truncation`: the context window check refuses
    /// what does not fit).
    static let ignored: Set<String> = [
        "store", "include", "truncation", "stream_options", "max_tool_calls", "prompt_cache_key",
        "prompt_cache_retention", "safety_identifier", "service_tier", "metadata", "client_metadata",
    ]

    /// `lenient`: the request will most likely be passed through to an upstream that speaks
    /// Responses; what cannot be translated is left out of the chat body (which then serves the
    /// estimate and the hold, and a fallback to a chat upstream) instead of refused.
    public static func chatBody(from body: JSONObject, lenient: Bool = false) throws(GatewayError) -> JSONObject {
        for name in ["previous_response_id", "conversation"] {
            if let value = body[name], !value.isNull {
                throw .invalidValue(
                    name,
                    "Switchyard does not store responses or conversations (its privacy promise: no prompt or completion is kept), so '\(name)' cannot be used. Send the whole conversation in 'input' instead.")
            }
        }
        if body["background"]?.boolValue == true {
            throw .unsupported("Background responses are not supported: Switchyard stores no responses.", param: "background")
        }
        if let prompt = body["prompt"], !prompt.isNull {
            throw .unsupported("Stored prompt templates are not supported: send 'instructions' and 'input'.", param: "prompt")
        }
        var chat = JSONObject()
        if let model = body["model"] { chat["model"] = model }
        var messages: [JSONValue] = []
        if let instructions = body["instructions"], !instructions.isNull {
            guard let text = instructions.stringValue else {
                throw .invalidType("instructions", expected: "a string", got: instructions)
            }
            messages.append(.object(["role": "system", "content": .string(text)]))
        }
        guard let input = body["input"], !input.isNull else { throw .missingParameter("input") }
        switch input {
        case .string(let text):
            messages.append(.object(["role": "user", "content": .string(text)]))
        case .array(let items):
            try appendItems(items, tools: ToolNames(request: body), lenient: lenient, to: &messages)
        default:
            throw .invalidType("input", expected: "a string or an array", got: input)
        }
        guard !messages.isEmpty else {
            throw .invalidValue("input", "Invalid 'input': empty array. Expected at least one item.")
        }
        chat["messages"] = .array(messages)

        if let tools = body["tools"], !tools.isNull {
            guard let list = tools.arrayValue else { throw .invalidType("tools", expected: "an array", got: tools) }
            var functions: [JSONValue] = []
            for (index, tool) in list.enumerated() {
                functions += try chatTools(tool, param: "tools[\(index)]")
            }
            if !functions.isEmpty { chat["tools"] = .array(functions) }
        }
        if let choice = body["tool_choice"], !choice.isNull, chat["tools"] != nil {
            do {
                chat["tool_choice"] = try chatToolChoice(choice)
            } catch where lenient {}
        }
        if let parallel = body["parallel_tool_calls"], !parallel.isNull, chat["tools"] != nil {
            chat["parallel_tool_calls"] = parallel
        }
        if let limit = body["max_output_tokens"], !limit.isNull {
            guard let value = limit.intValue else { throw .invalidType("max_output_tokens", expected: "an integer", got: limit) }
            guard value >= 1 else {
                throw .invalidValue("max_output_tokens", "Invalid 'max_output_tokens': integer below minimum value (\(value)).")
            }
            chat["max_tokens"] = limit
        }
        if let text = body["text"]?.objectValue {
            if let format = text["format"]?.objectValue { chat["response_format"] = try responseFormat(format) }
            if let verbosity = text["verbosity"], !verbosity.isNull { chat["verbosity"] = verbosity }
        }
        if let effort = body["reasoning"]?["effort"], !effort.isNull { chat["reasoning_effort"] = effort }
        for name in ["temperature", "top_p", "user", "stream", "top_logprobs"] {
            if let value = body[name], !value.isNull { chat[name] = value }
        }
        if chat["top_logprobs"] != nil { chat["logprobs"] = true }
        return chat
    }

    /// Appends input items as chat messages: consecutive function calls (and the assistant text
    /// before them) become one assistant message with `tool_calls`.
    static func appendItems(
        _ items: [JSONValue], tools: ToolNames, lenient: Bool, to messages: inout [JSONValue]
    ) throws(GatewayError) {
        func appendCall(_ call: JSONValue) {
            if case .object(var last)? = messages.last, last["role"]?.stringValue == "assistant" {
                var calls = last["tool_calls"]?.arrayValue ?? []
                calls.append(call)
                last["tool_calls"] = .array(calls)
                messages[messages.count - 1] = .object(last)
            } else {
                messages.append(.object(["role": "assistant", "content": .null, "tool_calls": .array([call])]))
            }
        }
        for (index, item) in items.enumerated() {
            let param = "input[\(index)]"
            guard let object = item.objectValue else { throw .invalidType(param, expected: "an object", got: item) }
            let type = object["type"]?.stringValue ?? (object["role"] != nil ? "message" : "")
            switch type {
            case "message":
                try appendMessage(object, param: param, lenient: lenient, to: &messages)
            case "function_call":
                guard let callID = object["call_id"]?.stringValue else { throw .missingParameter("\(param).call_id") }
                guard let name = object["name"]?.stringValue else { throw .missingParameter("\(param).name") }
                let chatName = ToolNames.flattened(name, namespace: object["namespace"]?.stringValue)
                appendCall(
                    .object([
                        "id": .string(callID), "type": "function",
                        "function": .object(["name": .string(chatName), "arguments": object["arguments"] ?? .string("{}")]),
                    ]))
            case "custom_tool_call":
                guard let callID = object["call_id"]?.stringValue else { throw .missingParameter("\(param).call_id") }
                guard let name = object["name"]?.stringValue else { throw .missingParameter("\(param).name") }
                let arguments = JSONValue.object(["input": object["input"] ?? .string("")]).serializedString()
                appendCall(
                    .object([
                        "id": .string(callID), "type": "function",
                        "function": .object([
                            "name": .string(ToolNames.flattened(name, namespace: object["namespace"]?.stringValue)),
                            "arguments": .string(arguments),
                        ]),
                    ]))
            case "function_call_output", "custom_tool_call_output":
                guard let callID = object["call_id"]?.stringValue else { throw .missingParameter("\(param).call_id") }
                let output = object["output"]
                let content: JSONValue =
                    output?.stringValue.map(JSONValue.string) ?? .string(Translate.text(of: output, separator: "\n"))
                messages.append(.object(["role": "tool", "tool_call_id": .string(callID), "content": content]))
            case "reasoning":
                // A reasoning item from an earlier turn: chat completions have no place for it (and
                // its encrypted content means nothing to another upstream).
                continue
            case "item_reference":
                throw .invalidValue(
                    param, "Item references need stored responses, which Switchyard does not keep: send the item itself.")
            default:
                if lenient { continue }
                throw .unsupported(
                    "Input items of type '\(type)' cannot be translated to chat completions for this model.", param: param)
            }
        }
    }

    static func appendMessage(
        _ object: JSONObject, param: String, lenient: Bool, to messages: inout [JSONValue]
    ) throws(GatewayError) {
        guard let role = object["role"]?.stringValue else { throw .missingParameter("\(param).role") }
        let chatRole = role == "developer" ? "system" : role
        guard ["user", "assistant", "system"].contains(chatRole) else {
            throw .invalidValue("\(param).role", "Invalid value for '\(param).role': '\(role)'.")
        }
        let content = object["content"] ?? .string("")
        switch content {
        case .string:
            messages.append(.object(["role": .string(chatRole), "content": content]))
        case .array(let parts):
            if chatRole != "user" {
                // System and assistant turns are text: many upstreams take nothing else there.
                messages.append(
                    .object(["role": .string(chatRole), "content": .string(Translate.text(of: content))]))
                return
            }
            var chatParts: [JSONValue] = []
            for (index, part) in parts.enumerated() {
                do {
                    chatParts.append(try chatPart(part, param: "\(param).content[\(index)]"))
                } catch where lenient {}
            }
            messages.append(.object(["role": "user", "content": .array(chatParts)]))
        default:
            throw .invalidType("\(param).content", expected: "a string or an array", got: content)
        }
    }

    static func chatPart(_ part: JSONValue, param: String) throws(GatewayError) -> JSONValue {
        guard let object = part.objectValue, let type = object["type"]?.stringValue else {
            throw .invalidType(param, expected: "a content part object", got: part)
        }
        switch type {
        case "input_text", "output_text", "text":
            return .object(["type": "text", "text": object["text"] ?? .string("")])
        case "input_image":
            // An upload's id stands where a URL would: the gateway puts its bytes there (`Uploads`).
            guard let url = object["image_url"]?.stringValue ?? object["file_id"]?.stringValue else {
                throw .missingParameter("\(param).image_url")
            }
            var image: JSONObject = ["url": .string(url)]
            if let detail = object["detail"], !detail.isNull { image["detail"] = detail }
            return .object(["type": "image_url", "image_url": .object(image)])
        case "input_file":
            var file: JSONObject
            if let data = object["file_data"] {
                file = ["file_data": data]
            } else if let id = object["file_id"] {
                file = ["file_id": id]
            } else {
                throw .unsupported("Files by 'file_url' are not supported: send 'file_data' or an upload's 'file_id'.", param: param)
            }
            if let name = object["filename"] { file["filename"] = name }
            return .object(["type": "file", "file": .object(file)])
        case "input_audio":
            return .object(["type": "input_audio", "input_audio": object["input_audio"] ?? .null])
        default:
            throw .unsupported("Content parts of type '\(type)' cannot be translated to chat completions.", param: param)
        }
    }

    /// A Responses tool as chat function tools: a flat function tool as chat's nested one; each
    /// tool of a `namespace` as a function named `NAMESPACE__name` (and back, `ToolNames`); a
    /// `custom` (free-text) tool as a function taking one string, `input`. Tools that run inside
    /// OpenAI's service (`web_search`, `file_search`, `tool_search`, `code_interpreter`, MCP…) are
    /// left out: a chat model cannot call them, and agents send them by default.
    static func chatTools(_ tool: JSONValue, param: String, namespace: String? = nil) throws(GatewayError) -> [JSONValue] {
        guard let object = tool.objectValue else { throw .invalidType(param, expected: "an object", got: tool) }
        let type = object["type"]?.stringValue ?? "function"
        switch type {
        case "function":
            guard let name = object["name"]?.stringValue else { throw .missingParameter("\(param).name") }
            var function: JSONObject = ["name": .string(ToolNames.flattened(name, namespace: namespace))]
            for key in ["description", "parameters", "strict"] {
                if let value = object[key], !value.isNull { function[key] = value }
            }
            return [.object(["type": "function", "function": .object(function)])]
        case "namespace":
            guard let name = object["name"]?.stringValue else { throw .missingParameter("\(param).name") }
            var tools: [JSONValue] = []
            for (index, inner) in (object["tools"]?.arrayValue ?? []).enumerated() {
                tools += try chatTools(inner, param: "\(param).tools[\(index)]", namespace: name)
            }
            return tools
        case "custom":
            guard let name = object["name"]?.stringValue else { throw .missingParameter("\(param).name") }
            var description = object["description"]?.stringValue ?? ""
            if let definition = object["format"]?["definition"]?.stringValue {
                description += "\n\nThe input follows this grammar (\(object["format"]?["syntax"]?.stringValue ?? "")):\n" + definition
            }
            let parameters: JSONValue = .object([
                "type": "object",
                "properties": .object(["input": .object(["type": "string", "description": "The tool's free-text input."])]),
                "required": .array(["input"]), "additionalProperties": false,
            ])
            return [
                .object([
                    "type": "function",
                    "function": .object([
                        "name": .string(ToolNames.flattened(name, namespace: namespace)), "description": .string(description),
                        "parameters": parameters,
                    ]),
                ])
            ]
        default:
            return []
        }
    }

    static func chatToolChoice(_ choice: JSONValue) throws(GatewayError) -> JSONValue {
        if choice.stringValue != nil { return choice }
        guard let object = choice.objectValue else {
            throw .invalidType("tool_choice", expected: "a string or an object", got: choice)
        }
        switch object["type"]?.stringValue {
        case "function":
            guard let name = object["name"] else { throw .missingParameter("tool_choice.name") }
            return .object(["type": "function", "function": .object(["name": name])])
        case "allowed_tools":
            return object["mode"] == .string("required") ? "required" : "auto"
        case "custom":
            guard let name = object["name"] else { throw .missingParameter("tool_choice.name") }
            return .object(["type": "function", "function": .object(["name": name])])
        default:
            throw .unsupported("This 'tool_choice' names a built-in tool, which this model cannot serve.", param: "tool_choice")
        }
    }

    static func responseFormat(_ format: JSONObject) throws(GatewayError) -> JSONValue {
        switch format["type"]?.stringValue {
        case "text": return .object(["type": "text"])
        case "json_object": return .object(["type": "json_object"])
        case "json_schema":
            var schema = JSONObject()
            for key in ["name", "description", "schema", "strict"] {
                if let value = format[key], !value.isNull { schema[key] = value }
            }
            return .object(["type": "json_schema", "json_schema": .object(schema)])
        default:
            throw .invalidValue("text.format.type", "Invalid 'text.format.type': expected 'text', 'json_object' or 'json_schema'.")
        }
    }
}

/// How the function names a chat upstream sees map back to the Responses tools they came from:
/// `NAMESPACE__name` to a namespaced function, a custom tool's name to a `custom_tool_call`.
public struct ToolNames: Sendable {
    public enum Origin: Sendable, Equatable {
        case function
        case namespaced(namespace: String, name: String)
        case custom(namespace: String?, name: String)
    }

    var byChatName: [String: Origin] = [:]

    public init(request body: JSONObject) {
        for tool in body["tools"]?.arrayValue ?? [] { add(tool, namespace: nil) }
    }

    private mutating func add(_ tool: JSONValue, namespace: String?) {
        guard let name = tool["name"]?.stringValue else { return }
        switch tool["type"]?.stringValue ?? "function" {
        case "namespace":
            for inner in tool["tools"]?.arrayValue ?? [] { add(inner, namespace: name) }
        case "custom":
            byChatName[Self.flattened(name, namespace: namespace)] = .custom(namespace: namespace, name: name)
        case "function":
            if let namespace {
                byChatName[Self.flattened(name, namespace: namespace)] = .namespaced(namespace: namespace, name: name)
            }
        default:
            break
        }
    }

    public static func flattened(_ name: String, namespace: String?) -> String {
        guard let namespace, !namespace.isEmpty else { return name }
        return namespace + "__" + name
    }

    /// Where a chat tool call's function came from.
    public func origin(ofChatName name: String) -> Origin {
        byChatName[name] ?? .function
    }
}
