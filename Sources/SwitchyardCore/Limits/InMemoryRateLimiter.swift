import Synchronization

/// The limits of one gateway process (`RateLimiting` in memory): requests and tokens per minute as
/// exact sliding windows, and concurrent requests. Every limit of a request is checked and then
/// counted under one lock, which is what makes "60 per minute" exact under any concurrency.
public final class InMemoryRateLimiter: RateLimiting {
    fileprivate struct Key: Hashable {
        var scope: RateLimitScope
        var name: String
    }

    fileprivate struct Entry {
        var requests: SlidingWindow?
        var tokens: SlidingWindow?
        var inFlight = 0

        var idle: Bool { inFlight == 0 && requests?.isEmpty != false && tokens?.isEmpty != false }
    }

    fileprivate struct State {
        var entries: [Key: Entry] = [:]
        var nextID: UInt64 = 0
        var sweepAbove = 4096
    }

    private let state = Mutex(State())
    private let clock: any GatewayClock

    public init(clock: any GatewayClock = SystemClock()) {
        self.clock = clock
    }

    public func admit(_ rules: [RateLimitRule], tokens: Int) async throws(RateLimitRefusal) -> RateLimitGrant {
        try admitNow(rules, tokens: tokens)
    }

    /// `admit` without the suspension point, for callers (and tests) that hold this adapter itself.
    public func admitNow(_ rules: [RateLimitRule], tokens: Int) throws(RateLimitRefusal) -> RateLimitGrant {
        let now = clock.now
        let rules = rules.filter(\.limitsAnything)
        let outcome = state.withLock { state -> Result<RateLimitGrant, RateLimitRefusal> in
            state.sweepIfLarge(now: now)
            // First check every rule, changing nothing but expired entries...
            var refusal: RateLimitRefusal?
            for rule in rules {
                let key = Key(scope: rule.scope, name: rule.name)
                var entry = state.entries[key] ?? Entry(rule)
                entry.adopt(rule)
                entry.requests?.prune(now: now)
                entry.tokens?.prune(now: now)
                state.entries[key] = entry
                // The longest wait wins: the request needs every limit to have room.
                if let found = entry.refusal(rule, tokens: tokens, now: now) {
                    if let current = refusal, current.wait >= found.wait { continue }
                    refusal = found
                }
            }
            if let refusal { return .failure(refusal) }
            // ...then count the request against all of them at once.
            state.nextID += 1
            var grant = RateLimitGrant(id: state.nextID, scopes: [], snapshot: RateLimitSnapshot())
            for rule in rules {
                let key = Key(scope: rule.scope, name: rule.name)
                guard var entry = state.entries[key] else { continue }
                entry.requests?.add(1, id: grant.id, now: now)
                entry.tokens?.add(tokens, id: grant.id, now: now)
                if rule.concurrent != nil { entry.inFlight += 1 }
                state.entries[key] = entry
                grant.scopes.append((rule.scope, rule.name, rule.concurrent != nil))
                grant.snapshot.tighten(with: entry, now: now)
            }
            return .success(grant)
        }
        return try outcome.get()
    }

    public func finish(_ grant: RateLimitGrant, tokens: Int?) {
        state.withLock { state in
            for scope in grant.scopes {
                let key = Key(scope: scope.scope, name: scope.name)
                guard var entry = state.entries[key] else { continue }
                if scope.concurrent { entry.inFlight = max(0, entry.inFlight - 1) }
                if let tokens { entry.tokens?.adjust(id: grant.id, to: tokens) }
                state.entries[key] = entry
            }
        }
    }

    public func revoke(_ grant: RateLimitGrant) {
        state.withLock { state in
            for scope in grant.scopes {
                let key = Key(scope: scope.scope, name: scope.name)
                guard var entry = state.entries[key] else { continue }
                if scope.concurrent { entry.inFlight = max(0, entry.inFlight - 1) }
                entry.requests?.remove(id: grant.id)
                entry.tokens?.remove(id: grant.id)
                state.entries[key] = entry
            }
        }
    }
}

extension InMemoryRateLimiter.Entry {
    init(_ rule: RateLimitRule) {
        requests = rule.requestsPerMinute.map { SlidingWindow(limit: $0) }
        tokens = rule.tokensPerMinute.map { SlidingWindow(limit: $0) }
    }

    /// The rule's limits may have changed since the entry was made (an account's or key's own limits
    /// set through the admin API): keep what the windows counted, under the new limits.
    mutating func adopt(_ rule: RateLimitRule) {
        func adopt(_ window: inout SlidingWindow?, _ limit: Int?) {
            guard let limit else {
                window = nil
                return
            }
            if window == nil { window = SlidingWindow(limit: limit) } else { window?.limit = limit }
        }
        adopt(&requests, rule.requestsPerMinute)
        adopt(&tokens, rule.tokensPerMinute)
    }

    /// Why this rule refuses the request now, if it does (expired entries already pruned).
    func refusal(_ rule: RateLimitRule, tokens amount: Int, now: ContinuousClock.Instant) -> RateLimitRefusal? {
        var snapshot = RateLimitSnapshot()
        snapshot.tighten(with: self, now: now)
        func refuse(_ kind: RateLimitKind, wait: Duration, _ message: String) -> RateLimitRefusal {
            let seconds = max(1, (wait.millis + 999) / 1000)
            let error = GatewayError(
                status: 429, message: message + " Please try again in \(seconds)s.", type: "rate_limit_exceeded",
                code: "rate_limit_exceeded", headers: [("retry-after", "\(seconds)")] + snapshot.headers)
            return RateLimitRefusal(scope: rule.scope, kind: kind, wait: wait, error: error)
        }
        if let window = requests, !window.fits(1) {
            return refuse(
                .requests, wait: window.wait(for: 1, now: now) ?? window.window,
                "Rate limit reached for \(rule.label): \(window.limit) requests per minute.")
        }
        if let window = tokens, !window.fits(amount) {
            guard let wait = window.wait(for: amount, now: now) else {
                return refuse(
                    .tokens, wait: window.window,
                    "This request may use up to \(amount) tokens, more than the \(window.limit) tokens per minute "
                        + "allowed for \(rule.label). Lower max_tokens.")
            }
            return refuse(.tokens, wait: wait, "Rate limit reached for \(rule.label): \(window.limit) tokens per minute.")
        }
        if let limit = rule.concurrent, inFlight >= limit {
            return refuse(.concurrent, wait: .seconds(1), "Too many concurrent requests for \(rule.label): at most \(limit).")
        }
        return nil
    }
}

extension RateLimitSnapshot {
    /// Keeps the limit with the least room left.
    fileprivate mutating func tighten(with entry: InMemoryRateLimiter.Entry, now: ContinuousClock.Instant) {
        if let window = entry.requests, window.remaining < requests?.remaining ?? .max {
            requests = (window.limit, window.remaining, window.resetIn(now: now))
        }
        if let window = entry.tokens, window.remaining < tokens?.remaining ?? .max {
            tokens = (window.limit, window.remaining, window.resetIn(now: now))
        }
    }
}

extension InMemoryRateLimiter.State {
    /// End users come and go; forget the scopes that hold nothing once there are many.
    fileprivate mutating func sweepIfLarge(now: ContinuousClock.Instant) {
        guard entries.count > sweepAbove else { return }
        for (key, var entry) in entries {
            entry.requests?.prune(now: now)
            entry.tokens?.prune(now: now)
            entries[key] = entry.idle ? nil : entry
        }
        sweepAbove = max(4096, entries.count * 2)
    }
}
