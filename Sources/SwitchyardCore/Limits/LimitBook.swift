/// The rules of admission under limits, written once for every adapter of `RateLimiting`: the
/// windows and concurrency counts of the scopes a request names, checked together and then counted
/// together. `InMemoryRateLimiter` keeps one book under a lock; the PostgreSQL adapter reads the
/// scopes a batch of admissions names into a book (locked, inside the transaction that writes the
/// result), applies the batch in order and writes the book back — which is why a batch comes to
/// exactly what one admission at a time would have.
///
/// Pure: time is milliseconds in the adapter's epoch, passed in.
public struct LimitBook: Sendable {
    public struct Key: Hashable, Sendable {
        public var scope: RateLimitScope
        public var name: String

        public init(scope: RateLimitScope, name: String) {
            self.scope = scope
            self.name = name
        }
    }

    /// One scope's counts.
    public struct Entry: Sendable, Equatable {
        public var requests: SlidingWindow?
        public var tokens: SlidingWindow?
        /// Requests holding a concurrency slot.
        public var inFlight = 0

        public init(requests: SlidingWindow? = nil, tokens: SlidingWindow? = nil, inFlight: Int = 0) {
            self.requests = requests
            self.tokens = tokens
            self.inFlight = inFlight
        }

        public var idle: Bool { inFlight == 0 && requests?.isEmpty != false && tokens?.isEmpty != false }
    }

    public var entries: [Key: Entry] = [:]

    public init(entries: [Key: Entry] = [:]) {
        self.entries = entries
    }

    /// Admits a request that may use `tokens` under every rule (those that limit something), counting
    /// it against all of them, or changes nothing but expired buckets and says why not.
    public mutating func admit(
        _ rules: [RateLimitRule], tokens: Int, id: UInt64, now: Int64
    ) -> Result<RateLimitGrant, RateLimitRefusal> {
        // First check every rule, changing nothing but expired buckets...
        var refusal: RateLimitRefusal?
        for rule in rules where rule.limitsAnything {
            let key = Key(scope: rule.scope, name: rule.name)
            var entry = entries[key] ?? Entry(rule)
            entry.adopt(rule)
            entry.requests?.prune(now: now)
            entry.tokens?.prune(now: now)
            entries[key] = entry
            // The longest wait wins: the request needs every limit to have room.
            if let found = entry.refusal(rule, tokens: tokens, now: now) {
                if let current = refusal, current.wait >= found.wait { continue }
                refusal = found
            }
        }
        if let refusal { return .failure(refusal) }
        // ...then count the request against all of them at once.
        var grant = RateLimitGrant(id: id, scopes: [], snapshot: RateLimitSnapshot(), admittedAt: now, tokens: tokens)
        for rule in rules where rule.limitsAnything {
            let key = Key(scope: rule.scope, name: rule.name)
            guard var entry = entries[key] else { continue }
            entry.requests?.add(1, now: now)
            entry.tokens?.add(tokens, now: now)
            if rule.concurrent != nil { entry.inFlight += 1 }
            entries[key] = entry
            grant.scopes.append((rule.scope, rule.name, rule.concurrent != nil))
            grant.snapshot.tighten(with: entry, now: now)
        }
        return .success(grant)
    }

    /// The request ended: its slots are free (unless `slots` is false: an adapter that counts slots
    /// elsewhere), and its token estimate becomes what it used (`nil`: keep the estimate).
    public mutating func finish(_ grant: RateLimitGrant, tokens: Int?, slots: Bool = true) {
        for scope in grant.scopes {
            let key = Key(scope: scope.scope, name: scope.name)
            guard var entry = entries[key] else { continue }
            if slots && scope.concurrent { entry.inFlight = max(0, entry.inFlight - 1) }
            if let tokens { entry.tokens?.adjust(from: grant.tokens, to: tokens, admittedAt: grant.admittedAt) }
            entries[key] = entry
        }
    }

    /// Takes the admission back entirely.
    public mutating func revoke(_ grant: RateLimitGrant, slots: Bool = true) {
        for scope in grant.scopes {
            let key = Key(scope: scope.scope, name: scope.name)
            guard var entry = entries[key] else { continue }
            if slots && scope.concurrent { entry.inFlight = max(0, entry.inFlight - 1) }
            entry.requests?.remove(1, admittedAt: grant.admittedAt)
            entry.tokens?.remove(grant.tokens, admittedAt: grant.admittedAt)
            entries[key] = entry
        }
    }

    /// Forgets the scopes that hold nothing (end users come and go).
    public mutating func sweep(now: Int64) {
        for (key, var entry) in entries {
            entry.requests?.prune(now: now)
            entry.tokens?.prune(now: now)
            entries[key] = entry.idle ? nil : entry
        }
    }
}

extension LimitBook.Entry {
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

    /// Why this rule refuses the request now, if it does (expired buckets already pruned).
    func refusal(_ rule: RateLimitRule, tokens amount: Int, now: Int64) -> RateLimitRefusal? {
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
    fileprivate mutating func tighten(with entry: LimitBook.Entry, now: Int64) {
        if let window = entry.requests, window.remaining < requests?.remaining ?? .max {
            requests = (window.limit, window.remaining, window.resetIn(now: now))
        }
        if let window = entry.tokens, window.remaining < tokens?.remaining ?? .max {
            tokens = (window.limit, window.remaining, window.resetIn(now: now))
        }
    }
}
