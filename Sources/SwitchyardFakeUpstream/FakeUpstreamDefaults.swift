/// Behaviour used when a request does not override it through its `"fake"` object.
public struct FakeUpstreamDefaults: Sendable {
    /// Completion tokens per response.
    public var tokens: Int
    /// Pause between streamed chunks, in milliseconds.
    public var delayMs: Int
    /// What `"crash_after"` does; nil ignores it (an in-process fake must not end the test process).
    public var crash: (@Sendable () -> Void)?

    public init(tokens: Int = 8, delayMs: Int = 0, crash: (@Sendable () -> Void)? = nil) {
        self.tokens = tokens
        self.delayMs = delayMs
        self.crash = crash
    }
}
