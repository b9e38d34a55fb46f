/// Behaviour used when a request does not override it through its `"fake"` object.
public struct FakeUpstreamDefaults: Sendable {
    /// Completion tokens per response.
    public var tokens: Int
    /// Pause between streamed chunks, in milliseconds.
    public var delayMs: Int

    public init(tokens: Int = 8, delayMs: Int = 0) {
        self.tokens = tokens
        self.delayMs = delayMs
    }
}
