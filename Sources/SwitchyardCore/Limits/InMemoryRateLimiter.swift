import Synchronization

/// The limits of one gateway process (`RateLimiting` in memory): one `LimitBook` under one lock, so
/// every limit of a request is checked and then counted at once — which is what makes "60 per
/// minute" exact under any concurrency. Memory is O(1) per scope (a window is at most 61 buckets),
/// and scopes that hold nothing are swept once there are many.
public final class InMemoryRateLimiter: RateLimiting {
    fileprivate struct State {
        var book = LimitBook()
        var nextID: UInt64 = 0
        var sweepAbove = 4096
    }

    private let state = Mutex(State())
    private let clock: any GatewayClock
    /// The windows' epoch: milliseconds are counted from here on the monotonic clock.
    private let origin: ContinuousClock.Instant

    public init(clock: any GatewayClock = SystemClock()) {
        self.clock = clock
        self.origin = clock.now
    }

    private var nowMillis: Int64 {
        let elapsed = clock.now - origin
        return elapsed < .zero ? 0 : elapsed.millis
    }

    public func admit(_ rules: [RateLimitRule], tokens: Int) async throws(RateLimitRefusal) -> RateLimitGrant {
        try admitNow(rules, tokens: tokens)
    }

    /// `admit` without the suspension point, for callers (and tests) that hold this adapter itself.
    public func admitNow(_ rules: [RateLimitRule], tokens: Int) throws(RateLimitRefusal) -> RateLimitGrant {
        let now = nowMillis
        let outcome = state.withLock { state -> Result<RateLimitGrant, RateLimitRefusal> in
            if state.book.entries.count > state.sweepAbove {
                state.book.sweep(now: now)
                state.sweepAbove = max(4096, state.book.entries.count * 2)
            }
            state.nextID += 1
            return state.book.admit(rules, tokens: tokens, id: state.nextID, now: now)
        }
        return try outcome.get()
    }

    public func finish(_ grant: RateLimitGrant, tokens: Int?) {
        state.withLock { $0.book.finish(grant, tokens: tokens) }
    }

    public func revoke(_ grant: RateLimitGrant) {
        state.withLock { $0.book.revoke(grant) }
    }

    /// Scopes kept (tests of memory).
    public var scopeCount: Int { state.withLock { $0.book.entries.count } }
}
