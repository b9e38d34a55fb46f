/// Hand-written JSON output: the response shapes are fixed, and building them as text keeps
/// the benchmark hot path free of JSONSerialization and lets key order match OpenAI's.
enum JSONText {
    /// `text` as a JSON string literal, quotes included.
    static func quoted(_ text: String) -> String {
        let needsEscaping = text.utf8.contains { $0 < 0x20 || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") }
        guard needsEscaping else { return "\"" + text + "\"" }
        var out = "\""
        out.reserveCapacity(text.utf8.count + 8)
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default:
                out.unicodeScalars.append(scalar)
            }
        }
        out += "\""
        return out
    }

    /// OpenAI's error envelope; `codeJSON` is an already rendered literal (`null`, a string or a number).
    static func errorBody(message: String, type: String, codeJSON: String = "null") -> String {
        #"{"error":{"message":"# + quoted(message) + #","type":"# + quoted(type)
            + #","param":null,"code":"# + codeJSON + "}}"
    }

    static func usage(prompt: Int, completion: Int) -> String {
        #"{"prompt_tokens":\#(prompt),"completion_tokens":\#(completion),"total_tokens":\#(prompt + completion)}"#
    }
}
