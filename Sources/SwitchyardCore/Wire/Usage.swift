/// Token counts of one request, as reported by an upstream's `usage` object.
public struct Usage: Sendable, Equatable {
    public var promptTokens: Int
    public var completionTokens: Int
    /// Of the prompt tokens, those read from the upstream's prompt cache
    /// (`prompt_tokens_details.cached_tokens`; Anthropic's `cache_read_input_tokens`).
    public var cachedTokens: Int
    /// Of the prompt tokens, those written to the prompt cache (Anthropic's `cache_creation_input_tokens`).
    public var cacheWriteTokens: Int
    /// Of the completion tokens, those spent reasoning (`completion_tokens_details.reasoning_tokens`).
    public var reasoningTokens: Int
    public var totalTokens: Int { promptTokens + completionTokens }

    public init(promptTokens: Int, completionTokens: Int, cachedTokens: Int = 0, cacheWriteTokens: Int = 0, reasoningTokens: Int = 0) {
        self.promptTokens = promptTokens
        self.completionTokens = completionTokens
        self.cachedTokens = cachedTokens
        self.cacheWriteTokens = cacheWriteTokens
        self.reasoningTokens = reasoningTokens
    }

    /// Reads `{"prompt_tokens":…,"completion_tokens":…}` (and its details); `nil` when absent or `null`.
    public init?(_ value: JSONValue?) {
        guard let object = value?.objectValue, let prompt = object["prompt_tokens"]?.intValue else { return nil }
        self.promptTokens = prompt
        self.completionTokens = object["completion_tokens"]?.intValue ?? 0
        self.cachedTokens = object["prompt_tokens_details"]?["cached_tokens"]?.intValue ?? 0
        self.cacheWriteTokens = object["prompt_tokens_details"]?["cache_write_tokens"]?.intValue ?? 0
        self.reasoningTokens = object["completion_tokens_details"]?["reasoning_tokens"]?.intValue ?? 0
    }

    public var json: JSONValue {
        var object = JSONObject([
            "prompt_tokens": .int(promptTokens),
            "completion_tokens": .int(completionTokens),
            "total_tokens": .int(totalTokens),
        ])
        if cachedTokens > 0 || cacheWriteTokens > 0 {
            var details: JSONObject = ["cached_tokens": .int(cachedTokens)]
            if cacheWriteTokens > 0 { details["cache_write_tokens"] = .int(cacheWriteTokens) }
            object["prompt_tokens_details"] = .object(details)
        }
        if reasoningTokens > 0 {
            object["completion_tokens_details"] = .object(["reasoning_tokens": .int(reasoningTokens)])
        }
        return .object(object)
    }
}
