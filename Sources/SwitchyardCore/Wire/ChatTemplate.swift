/// How an engine renders chat messages into its prompt, so that the prompt can be counted with the
/// engine's own tokenizer exactly as the engine counts it (llama-cpp-python: "Hello" is 15 tokens
/// rendered, 1 raw).
public enum ChatTemplate: String, Sendable, Equatable, CaseIterable {
    /// `<|im_start|>ROLE\nCONTENT<|im_end|>\n` per message, then `<|im_start|>assistant\n`.
    case chatml

    /// The prompt the engine sees for `messages`; nil when a message has content this cannot render
    /// (an image, say), so the caller keeps its estimate.
    public func render(_ messages: JSONValue?) -> String? {
        guard let list = messages?.arrayValue else { return nil }
        var text = ""
        for message in list {
            guard let role = message["role"]?.stringValue, let content = Self.text(message["content"]) else { return nil }
            text += "<|im_start|>\(role)\n\(content)<|im_end|>\n"
        }
        return text + "<|im_start|>assistant\n"
    }

    private static func text(_ content: JSONValue?) -> String? {
        switch content {
        case .string(let text)?: return text
        case .null?, nil: return ""
        case .array(let parts)?:
            var text = ""
            for part in parts {
                guard part["type"]?.stringValue == "text", let piece = part["text"]?.stringValue else { return nil }
                text += piece
            }
            return text
        default: return nil
        }
    }
}
