import Metrics
import Synchronization
import SwitchyardCore

/// Admission limits of this process: requests and tokens per minute (exact sliding windows) and
/// concurrent requests, per model, account, key and end user. A request is admitted only if every
/// limit that applies to it has room, and then counted against all of them in one step, so
/// concurrent callers can never overshoot a limit; a refused request changes nothing.
final class RateLimiter: Sendable {
    enum Scope: String, Sendable, CaseIterable {
        case model, account, key
        case endUser = "end_user"
    }

    enum Kind: String, Sendable, CaseIterable {
        case requests, tokens, concurrent
    }

    /// The limits of one scope that apply to a request; nil fields do not limit.
    struct Rule: Sendable {
        var scope: Scope
        /// The model name, account id, key id, or account id + end user.
        var name: String
        /// How the refusal message names the scope ("the model 'baichuan'", "this account").
        var label: String
        var requestsPerMinute: Int?
        var tokensPerMinute: Int?
        var concurrent: Int?
    }

    /// The `x-ratelimit-*` headers of a response: the tightest requests and tokens limits that applied.
    struct Snapshot: Sendable {
        var requests: (limit: Int, remaining: Int, reset: Duration)?
        var tokens: (limit: Int, remaining: Int, reset: Duration)?

        var headers: [(name: String, value: String)] {
            var headers: [(name: String, value: String)] = []
            if let requests {
                headers += [
                    ("x-ratelimit-limit-requests", "\(requests.limit)"),
                    ("x-ratelimit-remaining-requests", "\(requests.remaining)"),
                    ("x-ratelimit-reset-requests", RateLimiter.format(requests.reset)),
                ]
            }
            if let tokens {
                headers += [
                    ("x-ratelimit-limit-tokens", "\(tokens.limit)"),
                    ("x-ratelimit-remaining-tokens", "\(tokens.remaining)"),
                    ("x-ratelimit-reset-tokens", RateLimiter.format(tokens.reset)),
                ]
            }
            return headers
        }
    }

    fileprivate struct Key: Hashable {
        var scope: Scope
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
    private let refusals: [String: Counter]

    init() {
        var refusals: [String: Counter] = [:]
        for scope in Scope.allCases {
            for kind in Kind.allCases {
                refusals["\(scope.rawValue)/\(kind.rawValue)"] = Counter(
                    label: "switchyard_rate_limited_total", dimensions: [("scope", scope.rawValue), ("limit", kind.rawValue)])
            }
        }
        self.refusals = refusals
    }

    /// Admits a request that may use `tokens` (its estimate) under every rule, or throws the 429.
    func admit(_ rules: [Rule], tokens: Int, now: ContinuousClock.Instant = .now) throws(GatewayError) -> Admission {
        let rules = rules.filter { $0.requestsPerMinute != nil || $0.tokensPerMinute != nil || $0.concurrent != nil }
        let outcome = state.withLock { state -> Result<(Admission.Grant, Snapshot), Refusal> in
            state.sweepIfLarge(now: now)
            // First check every rule, changing nothing but expired entries...
            var refusal: Refusal?
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
            let id = state.nextID
            var grant = Admission.Grant(id: id, keys: [])
            var snapshot = Snapshot()
            for rule in rules {
                let key = Key(scope: rule.scope, name: rule.name)
                guard var entry = state.entries[key] else { continue }
                entry.requests?.add(1, id: id, now: now)
                entry.tokens?.add(tokens, id: id, now: now)
                if rule.concurrent != nil { entry.inFlight += 1 }
                state.entries[key] = entry
                grant.keys.append((key, rule.concurrent != nil))
                snapshot.tighten(with: entry, now: now)
            }
            return .success((grant, snapshot))
        }
        switch outcome {
        case .success(let (grant, snapshot)):
            return Admission(limiter: self, grant: grant, snapshot: snapshot)
        case .failure(let refusal):
            refusals["\(refusal.scope.rawValue)/\(refusal.kind.rawValue)"]?.increment()
            throw refusal.error
        }
    }

    /// The request has ended: its concurrency slots are free, and its token estimate becomes what
    /// it really used (`nil`: keep the estimate).
    fileprivate func finish(_ grant: Admission.Grant, tokens: Int?) {
        state.withLock { state in
            for (key, concurrent) in grant.keys {
                guard var entry = state.entries[key] else { continue }
                if concurrent { entry.inFlight = max(0, entry.inFlight - 1) }
                if let tokens { entry.tokens?.adjust(id: grant.id, to: tokens) }
                state.entries[key] = entry
            }
        }
    }

    /// Takes the admission back entirely: the request never ran (refused by its hold, say).
    fileprivate func revoke(_ grant: Admission.Grant) {
        state.withLock { state in
            for (key, concurrent) in grant.keys {
                guard var entry = state.entries[key] else { continue }
                if concurrent { entry.inFlight = max(0, entry.inFlight - 1) }
                entry.requests?.remove(id: grant.id)
                entry.tokens?.remove(id: grant.id)
                state.entries[key] = entry
            }
        }
    }

    /// OpenAI's duration format for the reset headers: `250ms`, `12s`, `1m30s`.
    static func format(_ duration: Duration) -> String {
        let millis = BillingTicket.millis(duration)
        if millis < 1000 { return "\(millis)ms" }
        let seconds = (millis + 999) / 1000
        return seconds < 60 ? "\(seconds)s" : "\(seconds / 60)m\(seconds % 60)s"
    }

    fileprivate struct Refusal: Error {
        var scope: Scope
        var kind: Kind
        var wait: Duration
        var error: GatewayError
    }
}

/// One admitted request's place in the limits; `finish` or `revoke` it once.
final class Admission: Sendable {
    fileprivate struct Grant: Sendable {
        var id: UInt64
        var keys: [(RateLimiter.Key, Bool)]
    }

    private let limiter: RateLimiter
    private let grant: Grant
    private let done = Atomic<Bool>(false)
    /// The limits as they stood just after admission, for the response's headers.
    let snapshot: RateLimiter.Snapshot

    fileprivate init(limiter: RateLimiter, grant: Grant, snapshot: RateLimiter.Snapshot) {
        self.limiter = limiter
        self.grant = grant
        self.snapshot = snapshot
    }

    func finish(tokens: Int?) {
        guard !done.exchange(true, ordering: .acquiringAndReleasing) else { return }
        limiter.finish(grant, tokens: tokens)
    }

    func revoke() {
        guard !done.exchange(true, ordering: .acquiringAndReleasing) else { return }
        limiter.revoke(grant)
    }

    deinit { finish(tokens: nil) }
}

extension RateLimiter.Entry {
    init(_ rule: RateLimiter.Rule) {
        requests = rule.requestsPerMinute.map { SlidingWindow(limit: $0) }
        tokens = rule.tokensPerMinute.map { SlidingWindow(limit: $0) }
    }

    /// The rule's limits may have changed since the entry was made (an account's or key's own limits
    /// set through the admin API): keep what the windows counted, under the new limits.
    mutating func adopt(_ rule: RateLimiter.Rule) {
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
    fileprivate func refusal(_ rule: RateLimiter.Rule, tokens amount: Int, now: ContinuousClock.Instant) -> RateLimiter.Refusal? {
        var snapshot = RateLimiter.Snapshot()
        snapshot.tighten(with: self, now: now)
        func refuse(_ kind: RateLimiter.Kind, wait: Duration, _ message: String) -> RateLimiter.Refusal {
            let seconds = max(1, (BillingTicket.millis(wait) + 999) / 1000)
            let error = GatewayError(
                status: 429, message: message + " Please try again in \(seconds)s.", type: "rate_limit_exceeded",
                code: "rate_limit_exceeded", headers: [("retry-after", "\(seconds)")] + snapshot.headers)
            return RateLimiter.Refusal(scope: rule.scope, kind: kind, wait: wait, error: error)
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

extension RateLimiter.Snapshot {
    /// Keeps the limit with the least room left.
    fileprivate mutating func tighten(with entry: RateLimiter.Entry, now: ContinuousClock.Instant) {
        if let window = entry.requests, window.remaining < requests?.remaining ?? .max {
            requests = (window.limit, window.remaining, window.resetIn(now: now))
        }
        if let window = entry.tokens, window.remaining < tokens?.remaining ?? .max {
            tokens = (window.limit, window.remaining, window.resetIn(now: now))
        }
    }
}

extension RateLimiter.State {
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
