/// Token counts of one request, as reported by an upstream's `usage` object.
public struct Usage: Sendable, Equatable {
    public var promptTokens: Int
    public var completionTokens: Int
    public var totalTokens: Int { promptTokens + completionTokens }

    public init(promptTokens: Int, completionTokens: Int) {
        self.promptTokens = promptTokens
        self.completionTokens = completionTokens
    }

    /// Reads `{"prompt_tokens":…,"completion_tokens":…}`; `nil` when absent or `null`.
    public init?(_ value: JSONValue?) {
        guard let object = value?.objectValue, let prompt = object["prompt_tokens"]?.intValue else { return nil }
        self.promptTokens = prompt
        self.completionTokens = object["completion_tokens"]?.intValue ?? 0
    }

    public var json: JSONValue {
        .object(
            JSONObject([
                "prompt_tokens": .int(promptTokens),
                "completion_tokens": .int(completionTokens),
                "total_tokens": .int(totalTokens),
            ]))
    }
}
