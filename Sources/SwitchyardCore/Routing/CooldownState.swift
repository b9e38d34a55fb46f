/// One deployment's health as routing sees it: closed (in use), cooling down (skipped), or half-open
/// (cooled down; one request may probe it, and its outcome decides). A pure state machine: the
/// caller passes the time and keeps the state under its own lock.
public struct CooldownState: Sendable, Equatable {
    /// Failures since the last success.
    public private(set) var consecutiveFailures = 0
    /// Skipped until then (after `failures` in a row, or an upstream's `retry-after`).
    public private(set) var until: ContinuousClock.Instant?
    /// When the current half-open probe began; other requests skip the deployment meanwhile.
    public private(set) var probeSince: ContinuousClock.Instant?

    public init() {}

    /// Whether a request may use the deployment now. In the half-open state the first caller gets
    /// it (and becomes the probe); a probe that never reports back expires after `duration`.
    public mutating func claim(now: ContinuousClock.Instant, policy: RoutingConfig.Cooldown) -> Bool {
        if let until, now < until { return false }
        guard consecutiveFailures >= policy.failures else { return true }
        if let probeSince, now - probeSince < policy.duration { return false }
        probeSince = now
        return true
    }

    /// When the deployment can next be claimed, if it cannot be now.
    public func availableAt(now: ContinuousClock.Instant, policy: RoutingConfig.Cooldown) -> ContinuousClock.Instant? {
        if let until, now < until { return until }
        if consecutiveFailures >= policy.failures, let probeSince, now - probeSince < policy.duration {
            return probeSince + policy.duration
        }
        return nil
    }

    /// Skipped until `until` at least, on another replica's word; afterwards it is used again as if
    /// closed (the failures were counted there, not here).
    public mutating func cool(until: ContinuousClock.Instant) {
        self.until = max(self.until ?? until, until)
    }

    public mutating func recordSuccess() {
        consecutiveFailures = 0
        until = nil
        probeSince = nil
    }

    /// Counts a failure; `retryAfter` (an upstream's own word) keeps the deployment out at least that
    /// long. Returns whether this failure started a cooldown.
    public mutating func recordFailure(
        now: ContinuousClock.Instant, policy: RoutingConfig.Cooldown, retryAfter: Duration? = nil
    ) -> Bool {
        consecutiveFailures += 1
        probeSince = nil
        var cools = false
        if consecutiveFailures >= policy.failures {
            until = max(until ?? now, now + policy.duration)
            cools = true
        }
        if let retryAfter, retryAfter > .zero {
            until = max(until ?? now, now + retryAfter)
        }
        return cools
    }
}
