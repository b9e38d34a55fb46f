/// JSON documents for a planned completion, in the exact shapes OpenAI produces.
extension CompletionPlan {
    private var objectName: String {
        kind == .chat ? "chat.completion" : "text_completion"
    }

    private var chunkObjectName: String {
        kind == .chat ? "chat.completion.chunk" : "text_completion"
    }

    private var header: String {
        #"{"id":"# + JSONText.quoted(id) + #","object":""#
    }

    private var identity: String {
        #","created":\#(created),"model":"# + JSONText.quoted(model) + #","system_fingerprint":"fp_fake","#
    }

    // MARK: Non-streamed

    var responseBody: String {
        let choice: String
        switch kind {
        case .chat:
            choice = #"{"index":0,"message":"# + message + #","logprobs":null,"finish_reason":"#
                + JSONText.quoted(finishReason) + "}"
        case .text:
            choice = #"{"index":0,"text":"# + JSONText.quoted(text) + #","logprobs":null,"finish_reason":"#
                + JSONText.quoted(finishReason) + "}"
        }
        let usage = reportsUsage ? #","usage":"# + usageJSON : ""
        return header + objectName + "\"" + identity + #""choices":["# + choice + "]" + usage + "}"
    }

    private var message: String {
        guard let toolName else {
            return #"{"role":"assistant","content":"# + JSONText.quoted(text) + #","refusal":null}"#
        }
        return #"{"role":"assistant","content":null,"refusal":null,"tool_calls":[{"id":""# + Self.toolCallID
            + #"","type":"function","function":{"name":"# + JSONText.quoted(toolName)
            + #","arguments":"# + JSONText.quoted(Self.toolArguments) + "}}]}"
    }

    // MARK: Streamed

    /// Chat streams announce the role first; legacy completions start straight with text.
    var openingChunk: String? {
        guard kind == .chat else { return nil }
        guard let toolName else {
            return chunk(content: #"{"role":"assistant","content":""}"#, finishReason: nil)
        }
        let delta = #"{"role":"assistant","content":null,"tool_calls":[{"index":0,"id":""# + Self.toolCallID
            + #"","type":"function","function":{"name":"# + JSONText.quoted(toolName) + #","arguments":""}}]}"#
        return chunk(content: delta, finishReason: nil)
    }

    func contentChunk(_ index: Int) -> String {
        switch kind {
        case .chat:
            guard toolName != nil else {
                return chunk(content: #"{"content":"# + JSONText.quoted(piece(index)) + "}", finishReason: nil)
            }
            let delta = #"{"tool_calls":[{"index":0,"function":{"arguments":"#
                + JSONText.quoted(Self.toolArgumentPieces[index]) + "}}]}"
            return chunk(content: delta, finishReason: nil)
        case .text:
            return chunk(content: JSONText.quoted(piece(index)), finishReason: nil)
        }
    }

    var finishChunk: String {
        chunk(content: kind == .chat ? "{}" : #""""#, finishReason: finishReason)
    }

    /// OpenAI's trailing usage chunk: no choices, only usage.
    var usageChunk: String? {
        guard streamsUsage else { return nil }
        return header + chunkObjectName + "\"" + identity + #""choices":[],"usage":"# + usageJSON + "}"
    }

    /// `content` is the chat delta object or the text-completion text literal.
    private func chunk(content: String, finishReason: String?) -> String {
        let finish = finishReason.map(JSONText.quoted) ?? "null"
        let choice: String
        switch kind {
        case .chat:
            choice = #"{"index":0,"delta":"# + content + #","logprobs":null,"finish_reason":"# + finish + "}"
        case .text:
            choice = #"{"index":0,"text":"# + content + #","logprobs":null,"finish_reason":"# + finish + "}"
        }
        // With include_usage OpenAI puts an explicit `"usage":null` on every ordinary chunk.
        let usage = streamsUsage ? #","usage":null"# : ""
        return header + chunkObjectName + "\"" + identity + #""choices":["# + choice + "]" + usage + "}"
    }
}
