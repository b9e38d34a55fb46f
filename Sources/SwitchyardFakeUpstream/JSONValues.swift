/// Reads the loosely typed values JSONSerialization produces.
enum JSONValues {
    static func int(_ value: Any?) -> Int? {
        switch value {
        case let value as Int: value
        case let value as Double where value.isFinite: Int(value)
        default: nil
        }
    }

    static func bool(_ value: Any?) -> Bool? {
        value as? Bool
    }

    /// Whitespace-separated words, counted on UTF-8 bytes because prompts can be large.
    static func wordCount(_ text: String) -> Int {
        var count = 0
        var inWord = false
        for byte in text.utf8 {
            let isSpace = byte == 0x20 || (byte >= 0x09 && byte <= 0x0D)
            if isSpace {
                inWord = false
            } else if !inWord {
                inWord = true
                count += 1
            }
        }
        return count
    }

    /// Words in chat `messages`: string contents and the `text` parts of multi-part contents.
    static func chatPromptTokens(_ messages: Any?) -> Int {
        guard let messages = messages as? [Any] else { return 1 }
        var count = 0
        for case let message as [String: Any] in messages {
            if let content = message["content"] as? String {
                count += wordCount(content)
            } else if let parts = message["content"] as? [Any] {
                for case let part as [String: Any] in parts where part["type"] as? String == "text" {
                    count += wordCount(part["text"] as? String ?? "")
                }
            }
        }
        return max(count, 1)
    }

    /// Splits `prompt` or `input` into individual inputs; token arrays count one token per element.
    static func inputs(_ value: Any?) -> [(text: String, tokens: Int)] {
        switch value {
        case let text as String:
            return [(text, wordCount(text))]
        case let list as [Any]:
            if !list.isEmpty, list.allSatisfy({ int($0) != nil }) {
                return [(list.map { "\($0)" }.joined(separator: " "), list.count)]
            }
            return list.map { element in
                if let text = element as? String { return (text, wordCount(text)) }
                let tokens = element as? [Any] ?? []
                return (tokens.map { "\($0)" }.joined(separator: " "), tokens.count)
            }
        default:
            return []
        }
    }

    /// Name of the first function tool, which the scripted tool call pretends to invoke.
    static func firstToolName(_ tools: Any?) -> String {
        guard let tools = tools as? [Any],
            let first = tools.first as? [String: Any],
            let function = first["function"] as? [String: Any],
            let name = function["name"] as? String
        else { return "fake_fn" }
        return name
    }
}
