/// What a request consumed, gathered while it runs, and what it costs when it ends. Usage the
/// upstream reported wins; otherwise prompt and relayed output are estimated, and marked so.
public struct Meter: Sendable, Equatable {
    public var reported: Usage?
    /// Counted by the engine's tokenizer after the fact, for upstreams whose streams report none.
    public var counted: Usage?
    /// Output actually delivered to the client (or assembled for it): chunks and their text bytes.
    public var outputChunks = 0
    public var outputBytes = 0
    /// Estimated prompt tokens, used only when the upstream reports none.
    public var promptEstimate: Int
    /// What a media request delivered (images, characters, audio), for media prices.
    public var media = MediaUsage.none
    /// A media request: tokens are what the upstream reports, never estimated from its bytes.
    public var isMedia = false

    public init(promptEstimate: Int) {
        self.promptEstimate = promptEstimate
    }

    public var deliveredOutput: Bool { outputChunks > 0 || outputBytes > 0 || (reported?.completionTokens ?? 0) > 0 }

    /// Tokens relayed, when the upstream did not say: one per streamed output chunk (token-streaming
    /// engines send one token a chunk); for an answer that came whole, four bytes a token.
    public var estimatedCompletion: Int { outputChunks > 0 ? outputChunks : (outputBytes + 3) / 4 }

    /// The usage to bill: `(prompt, completion, source)`. With `charge` false (nothing reached the
    /// client) it is zero.
    public func billable(charge: Bool) -> (prompt: Int, completion: Int, source: LedgerSettlement.UsageSource) {
        guard charge else { return (0, 0, .none) }
        if let reported { return (reported.promptTokens, reported.completionTokens, .reported) }
        if isMedia { return (0, 0, .none) }
        if let counted { return (counted.promptTokens, counted.completionTokens, .engine) }
        return (promptEstimate, estimatedCompletion, .estimated)
    }
}
