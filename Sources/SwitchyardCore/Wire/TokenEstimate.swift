/// A tokenizer-free estimate of token counts, for when an upstream reports none: about four bytes of
/// UTF-8 per token, which is close for English and errs high for CJK text. Estimates are marked as
/// such wherever they are used.
public enum TokenEstimate {
    public static func count(_ text: String) -> Int {
        (text.utf8.count + 3) / 4
    }

    /// The prompt's size: message texts (and text parts) for chat, `prompt` for completions, `input`
    /// for embeddings; at least 1.
    public static func prompt(of body: JSONObject, endpoint: Endpoint) -> Int {
        var total = 0
        switch endpoint.prompt {
        case .messages:
            for message in body["messages"]?.arrayValue ?? [] {
                total += 4  // role and framing, as OpenAI's own accounting adds per message
                total += count(content: message["content"])
            }
        case .field(let name):
            total += count(content: body[name])
        }
        return max(1, total)
    }

    private static func count(content: JSONValue?) -> Int {
        switch content {
        case .string(let text)?: return count(text)
        case .array(let parts)?:
            return parts.reduce(0) { sum, part in
                switch part {
                case .string(let text): return sum + count(text)
                case .number: return sum + 1  // a token id
                case .array(let ids): return sum + ids.count
                case .object(let object): return sum + count(object["text"]?.stringValue ?? "")
                default: return sum
                }
            }
        default: return 0
        }
    }
}
