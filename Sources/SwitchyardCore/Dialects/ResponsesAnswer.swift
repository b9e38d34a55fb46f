/// Chat completion answers as OpenAI Responses objects: the whole answer, and the stream's events.
public struct ResponsesAnswer: Sendable {
    /// The response object without `status`, `output` and `usage`: what the request set, echoed as
    /// OpenAI echoes it, with the gateway's id and the public model name.
    public let template: JSONObject
    public let id: String
    /// Which chat function names stand for namespaced or custom tools of the request.
    public let tools: ToolNames

    public init(request body: JSONObject, identity: ResponseIdentity) {
        id = identity.id
        tools = ToolNames(request: body)
        var object: JSONObject = [
            "id": .string(identity.id), "object": "response", "created_at": .int(identity.created),
            "status": "in_progress", "background": false, "completed_at": nil, "error": nil,
            "incomplete_details": nil,
        ]
        object["instructions"] = body["instructions"] ?? .null
        object["max_output_tokens"] = body["max_output_tokens"] ?? .null
        object["model"] = .string(identity.model)
        object["output"] = .array([])
        object["parallel_tool_calls"] = body["parallel_tool_calls"] ?? true
        object["previous_response_id"] = nil
        var reasoning: JSONObject = ["effort": nil, "summary": nil]
        if let effort = body["reasoning"]?["effort"] { reasoning["effort"] = effort }
        object["reasoning"] = .object(reasoning)
        // Nothing is ever stored, whatever the request asked (docs/API.md).
        object["store"] = false
        object["temperature"] = body["temperature"] ?? .int(1)
        var text = body["text"]?.objectValue ?? JSONObject()
        if text["format"] == nil { text["format"] = .object(["type": "text"]) }
        object["text"] = .object(text)
        object["tool_choice"] = body["tool_choice"] ?? "auto"
        object["tools"] = body["tools"] ?? .array([])
        object["top_p"] = body["top_p"] ?? .int(1)
        object["truncation"] = body["truncation"] ?? "disabled"
        object["usage"] = nil
        object["user"] = body["user"] ?? .null
        object["metadata"] = body["metadata"] ?? .object([:])
        template = object
    }

    /// `status` and `incomplete_details` for a chat `finish_reason`.
    static func status(finishReason: String?) -> (String, JSONValue) {
        switch finishReason {
        case "length": ("incomplete", .object(["reason": "max_output_tokens"]))
        case "content_filter": ("incomplete", .object(["reason": "content_filter"]))
        default: ("completed", .null)
        }
    }

    /// Responses' `usage` for chat's.
    public static func usage(_ usage: Usage) -> JSONValue {
        .object([
            "input_tokens": .int(usage.promptTokens),
            "input_tokens_details": .object([
                "cached_tokens": .int(usage.cachedTokens), "cache_write_tokens": .int(usage.cacheWriteTokens),
            ]),
            "output_tokens": .int(usage.completionTokens),
            "output_tokens_details": .object(["reasoning_tokens": .int(usage.reasoningTokens)]),
            "total_tokens": .int(usage.totalTokens),
        ])
    }

    /// The response with its ending filled in.
    func finished(
        status: String, incomplete: JSONValue = .null, output: [JSONValue], usage: JSONValue, error: JSONValue = .null,
        completedAt: Int?
    ) -> JSONObject {
        var object = template
        object["status"] = .string(status)
        object["completed_at"] = completedAt.map(JSONValue.int) ?? .null
        object["error"] = error
        object["incomplete_details"] = incomplete
        object["output"] = .array(output)
        object["usage"] = usage
        return object
    }

    /// A whole chat completion as a response.
    public func response(fromChat chat: JSONObject, usage billed: Usage, completedAt: Int) -> JSONObject {
        let choice = chat["choices"]?.arrayValue?.first
        let message = choice?["message"]
        var output: [JSONValue] = []
        let suffix = String(id.dropFirst(5))
        if let reasoning = message?["reasoning_content"]?.stringValue, !reasoning.isEmpty {
            output.append(Self.reasoningItem(id: "rs_" + suffix, text: reasoning))
        }
        let text = message?["content"]?.stringValue ?? ""
        let refusal = message?["refusal"]?.stringValue
        if !text.isEmpty || refusal != nil || (message?["tool_calls"]?.arrayValue ?? []).isEmpty {
            var content: [JSONValue] = []
            if !text.isEmpty || refusal == nil { content.append(Self.outputText(text)) }
            if let refusal { content.append(.object(["type": "refusal", "refusal": .string(refusal)])) }
            output.append(Self.messageItem(id: "msg_" + suffix, status: "completed", content: content))
        }
        for (index, call) in (message?["tool_calls"]?.arrayValue ?? []).enumerated() {
            output.append(
                callItem(
                    id: "fc_\(suffix)_\(index)", callID: call["id"]?.stringValue ?? "call_\(suffix)_\(index)",
                    chatName: call["function"]?["name"]?.stringValue ?? "",
                    arguments: call["function"]?["arguments"]?.stringValue ?? "", status: "completed"))
        }
        let (status, incomplete) = Self.status(finishReason: choice?["finish_reason"]?.stringValue)
        var object = finished(
            status: status, incomplete: incomplete, output: output,
            usage: Self.usage(Usage(chat["usage"]) ?? billed),
            completedAt: completedAt)
        if chat["end_reason"] != nil {
            object["status"] = "cancelled"
            object["end_reason"] = chat["end_reason"]
        }
        return object
    }

    static func outputText(_ text: String) -> JSONValue {
        .object(["type": "output_text", "text": .string(text), "annotations": .array([]), "logprobs": .array([])])
    }

    static func messageItem(id: String, status: String, content: [JSONValue]) -> JSONValue {
        .object([
            "id": .string(id), "type": "message", "status": .string(status), "role": "assistant",
            "content": .array(content),
        ])
    }

    /// The output item of a chat tool call: a `function_call` (with its `namespace` when the
    /// function stands for a namespaced tool) or a `custom_tool_call` (its `input` unwrapped).
    func callItem(id: String, callID: String, chatName: String, arguments: String, status: String) -> JSONValue {
        switch tools.origin(ofChatName: chatName) {
        case .function:
            return Self.functionCallItem(id: id, callID: callID, name: chatName, arguments: arguments, status: status)
        case .namespaced(let namespace, let name):
            guard case .object(var item) = Self.functionCallItem(
                id: id, callID: callID, name: name, arguments: arguments, status: status)
            else { return .null }
            item["namespace"] = .string(namespace)
            return .object(item)
        case .custom(let namespace, let name):
            var item: JSONObject = [
                "id": .string(id), "type": "custom_tool_call", "status": .string(status), "call_id": .string(callID),
                "name": .string(name), "input": .string(Self.customInput(arguments)),
            ]
            if let namespace { item["namespace"] = .string(namespace) }
            return .object(item)
        }
    }

    /// A custom tool's free-text input from the one-string function arguments it was asked as.
    static func customInput(_ arguments: String) -> String {
        if case .object(let object)? = try? JSONValue.parse(arguments), let input = object["input"]?.stringValue {
            return input
        }
        return arguments
    }

    static func functionCallItem(id: String, callID: String, name: String, arguments: String, status: String) -> JSONValue {
        .object([
            "id": .string(id), "type": "function_call", "status": .string(status), "arguments": .string(arguments),
            "call_id": .string(callID), "name": .string(name),
        ])
    }

    static func reasoningItem(id: String, text: String) -> JSONValue {
        .object([
            "id": .string(id), "type": "reasoning", "summary": .array([]),
            "content": .array([.object(["type": "reasoning_text", "text": .string(text)])]),
        ])
    }
}

/// Turns the chat chunks of one stream into Responses events, each framed with its `event:` line
/// and numbered by `sequence_number` from 0: `response.created` and `.in_progress` first; an output
/// item per message text and per tool call, each opened (`output_item.added`, `content_part.added`),
/// grown (`output_text.delta`, `function_call_arguments.delta`) and closed (`.done` events) in
/// order; then `response.completed` (or `.incomplete` when cut by the token limit, or by a stop;
/// `response.failed` after an upstream failure) carrying the whole response.
public struct ResponsesStreamEncoder: Sendable {
    enum Item: Sendable {
        case message(id: String, text: String)
        case reasoning(id: String, text: String)
        case call(id: String, callID: String, name: String, arguments: String, chatIndex: Int)
    }

    let answer: ResponsesAnswer
    private var sequence = 0
    private var started = false
    /// Output items closed so far, as they appear in the final response.
    private var done: [JSONValue] = []
    private var open: Item?
    private var finishReason: String?
    private let suffix: String

    public init(answer: ResponsesAnswer) {
        self.answer = answer
        suffix = String(answer.id.dropFirst(5))
    }

    private mutating func emit(_ type: String, _ fields: JSONObject, into out: inout [UInt8]) {
        var object: JSONObject = ["type": .string(type)]
        object.members.append(contentsOf: fields.members)
        object["sequence_number"] = .int(sequence)
        sequence += 1
        out.append(contentsOf: NamedSSE.event(type, object))
    }

    /// `response.created` and `response.in_progress`, once.
    public mutating func start(into out: inout [UInt8]) {
        guard !started else { return }
        started = true
        emit("response.created", ["response": .object(answer.template)], into: &out)
        emit("response.in_progress", ["response": .object(answer.template)], into: &out)
    }

    /// The events for one chat chunk (stamped by the relay).
    public mutating func encode(_ chunk: JSONObject) -> [UInt8] {
        var out: [UInt8] = []
        start(into: &out)
        guard let choice = chunk["choices"]?.arrayValue?.first else { return out }
        let delta = choice["delta"]
        if let reasoning = delta?["reasoning_content"]?.stringValue, !reasoning.isEmpty {
            appendReasoning(reasoning, into: &out)
        }
        if let text = delta?["content"]?.stringValue, !text.isEmpty { appendText(text, into: &out) }
        for call in delta?["tool_calls"]?.arrayValue ?? [] { appendCall(call, into: &out) }
        if let reason = choice["finish_reason"]?.stringValue { finishReason = reason }
        return out
    }

    private var outputIndex: Int { done.count }

    private func isCustom(_ chatName: String) -> Bool {
        if case .custom = answer.tools.origin(ofChatName: chatName) { return true }
        return false
    }

    private mutating func appendReasoning(_ text: String, into out: inout [UInt8]) {
        if case .reasoning(let id, let sofar)? = open {
            open = .reasoning(id: id, text: sofar + text)
            emit(
                "response.reasoning_text.delta",
                ["item_id": .string(id), "output_index": .int(outputIndex), "content_index": 0, "delta": .string(text)],
                into: &out)
            return
        }
        close(into: &out)
        let id = "rs_\(suffix)_\(outputIndex)"
        open = .reasoning(id: id, text: text)
        emit(
            "response.output_item.added",
            ["output_index": .int(outputIndex), "item": .object(["id": .string(id), "type": "reasoning", "summary": .array([])])],
            into: &out)
        emit(
            "response.reasoning_text.delta",
            ["item_id": .string(id), "output_index": .int(outputIndex), "content_index": 0, "delta": .string(text)],
            into: &out)
    }

    private mutating func appendText(_ text: String, into out: inout [UInt8]) {
        if case .message(let id, let sofar)? = open {
            open = .message(id: id, text: sofar + text)
            emitTextDelta(id: id, text, into: &out)
            return
        }
        close(into: &out)
        let id = "msg_\(suffix)_\(outputIndex)"
        open = .message(id: id, text: text)
        emit(
            "response.output_item.added",
            ["output_index": .int(outputIndex), "item": ResponsesAnswer.messageItem(id: id, status: "in_progress", content: [])],
            into: &out)
        emit(
            "response.content_part.added",
            ["item_id": .string(id), "output_index": .int(outputIndex), "content_index": 0, "part": ResponsesAnswer.outputText("")],
            into: &out)
        emitTextDelta(id: id, text, into: &out)
    }

    private mutating func emitTextDelta(id: String, _ text: String, into out: inout [UInt8]) {
        emit(
            "response.output_text.delta",
            [
                "item_id": .string(id), "output_index": .int(outputIndex), "content_index": 0, "delta": .string(text),
                "logprobs": .array([]),
            ], into: &out)
    }

    private mutating func appendCall(_ call: JSONValue, into out: inout [UInt8]) {
        let chatIndex = call["index"]?.intValue ?? 0
        let piece = call["function"]?["arguments"]?.stringValue ?? ""
        if case .call(let id, let callID, let name, let arguments, let openIndex)? = open, openIndex == chatIndex {
            let newName = name.isEmpty ? (call["function"]?["name"]?.stringValue ?? "") : name
            open = .call(id: id, callID: callID, name: newName, arguments: arguments + piece, chatIndex: chatIndex)
            if !piece.isEmpty, !isCustom(newName) {
                emit(
                    "response.function_call_arguments.delta",
                    ["item_id": .string(id), "output_index": .int(outputIndex), "delta": .string(piece)], into: &out)
            }
            return
        }
        close(into: &out)
        let id = "fc_\(suffix)_\(outputIndex)"
        let callID = call["id"]?.stringValue ?? "call_\(suffix)_\(outputIndex)"
        let name = call["function"]?["name"]?.stringValue ?? ""
        open = .call(id: id, callID: callID, name: name, arguments: piece, chatIndex: chatIndex)
        emit(
            "response.output_item.added",
            [
                "output_index": .int(outputIndex),
                "item": answer.callItem(id: id, callID: callID, chatName: name, arguments: "", status: "in_progress"),
            ], into: &out)
        if !piece.isEmpty, !isCustom(name) {
            emit(
                "response.function_call_arguments.delta",
                ["item_id": .string(id), "output_index": .int(outputIndex), "delta": .string(piece)], into: &out)
        }
    }

    /// Closes the open item with its `.done` events; `status` is the item's final status.
    private mutating func close(status: String = "completed", into out: inout [UInt8]) {
        guard let item = open else { return }
        open = nil
        let index = outputIndex
        let final: JSONValue
        switch item {
        case .message(let id, let text):
            emit(
                "response.output_text.done",
                ["item_id": .string(id), "output_index": .int(index), "content_index": 0, "text": .string(text), "logprobs": .array([])],
                into: &out)
            emit(
                "response.content_part.done",
                ["item_id": .string(id), "output_index": .int(index), "content_index": 0, "part": ResponsesAnswer.outputText(text)],
                into: &out)
            final = ResponsesAnswer.messageItem(id: id, status: status, content: [ResponsesAnswer.outputText(text)])
        case .reasoning(let id, let text):
            emit(
                "response.reasoning_text.done",
                ["item_id": .string(id), "output_index": .int(index), "content_index": 0, "text": .string(text)], into: &out)
            final = ResponsesAnswer.reasoningItem(id: id, text: text)
        case .call(let id, let callID, let name, let arguments, _):
            final = answer.callItem(id: id, callID: callID, chatName: name, arguments: arguments, status: status)
            if isCustom(name) {
                // A custom tool's input is free text; it was asked as JSON, so it is sent whole.
                emit(
                    "response.custom_tool_call_input.done",
                    ["item_id": .string(id), "output_index": .int(index), "input": final["input"] ?? ""], into: &out)
            } else {
                emit(
                    "response.function_call_arguments.done",
                    ["item_id": .string(id), "name": final["name"] ?? .string(name), "output_index": .int(index), "arguments": .string(arguments)],
                    into: &out)
            }
        }
        emit("response.output_item.done", ["output_index": .int(index), "item": final], into: &out)
        done.append(final)
    }

    /// The end of a stream that finished: `response.completed`, or `response.incomplete` when the
    /// token limit cut it.
    public mutating func finish(usage: Usage, completedAt: Int) -> [UInt8] {
        var out: [UInt8] = []
        start(into: &out)
        let (status, incomplete) = ResponsesAnswer.status(finishReason: finishReason)
        close(status: status == "completed" ? "completed" : "incomplete", into: &out)
        let response = answer.finished(
            status: status, incomplete: incomplete, output: done, usage: ResponsesAnswer.usage(usage),
            completedAt: status == "completed" ? completedAt : nil)
        emit(status == "completed" ? "response.completed" : "response.incomplete", ["response": .object(response)], into: &out)
        return out
    }

    /// The end of a stream its caller stopped: open items closed as incomplete, then
    /// `response.incomplete` whose response has status `cancelled` and `end_reason: "cancelled"`.
    public mutating func stopped(usage: Usage) -> [UInt8] {
        var out: [UInt8] = []
        start(into: &out)
        close(status: "incomplete", into: &out)
        var response = answer.finished(
            status: "cancelled", output: done, usage: ResponsesAnswer.usage(usage), completedAt: nil)
        response["end_reason"] = "cancelled"
        emit("response.incomplete", ["response": .object(response)], into: &out)
        return out
    }

    /// The end of a stream whose upstream failed: `response.failed` with the error, never a clean ending.
    public mutating func failed(_ error: JSONObject, usage: Usage) -> [UInt8] {
        var out: [UInt8] = []
        start(into: &out)
        close(status: "incomplete", into: &out)
        let code = error["code"]?.stringValue == "rate_limit_exceeded" ? "rate_limit_exceeded" : "server_error"
        let message = error["message"]?.stringValue ?? "The upstream failed."
        let response = answer.finished(
            status: "failed", output: done, usage: ResponsesAnswer.usage(usage),
            error: .object(["code": .string(code), "message": .string(message)]), completedAt: nil)
        emit("response.failed", ["response": .object(response)], into: &out)
        return out
    }
}
