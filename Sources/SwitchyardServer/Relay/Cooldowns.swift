import Metrics
import Synchronization
import SwitchyardCore

/// Every deployment's `CooldownState`, shared by all requests of this process: a deployment that
/// fails `routing.cooldown.failures` times in a row (or answers with `retry-after`) is skipped until
/// its cooldown ends, then one request probes it.
final class Cooldowns: Sendable {
    let policy: RoutingConfig.Cooldown
    private let states = Mutex<[String: CooldownState]>([:])
    /// `switchyard_deployment_cooldowns_total`, one counter per deployment, made once.
    private let counters: [String: Counter]
    private let clock: any GatewayClock

    init(policy: RoutingConfig.Cooldown, deployments: [String], clock: any GatewayClock) {
        self.policy = policy
        self.clock = clock
        var counters: [String: Counter] = [:]
        for id in deployments where counters[id] == nil {
            counters[id] = Counter(label: "switchyard_deployment_cooldowns_total", dimensions: [("deployment", id)])
        }
        self.counters = counters
    }

    /// Whether a request may use the deployment now (and, when it is half-open, makes this request its probe).
    func claim(_ deployment: String) -> Bool {
        let now = clock.now
        return states.withLock { $0[deployment, default: CooldownState()].claim(now: now, policy: policy) }
    }

    /// When a deployment that cannot be claimed now becomes available.
    func availableAt(_ deployment: String) -> ContinuousClock.Instant? {
        let now = clock.now
        return states.withLock { $0[deployment]?.availableAt(now: now, policy: policy) }
    }

    func succeeded(_ deployment: String) {
        states.withLock { states in
            // Healthy deployments need no entry; this keeps the common path from growing the map.
            if states[deployment] != nil { states[deployment] = nil }
        }
    }

    func failed(_ deployment: String, retryAfter: Duration?) {
        let now = clock.now
        let (cooled, until) = states.withLock { states -> (Bool, ContinuousClock.Instant?) in
            let cooled = states[deployment, default: CooldownState()].recordFailure(
                now: now, policy: policy, retryAfter: retryAfter)
            return (cooled, states[deployment]?.until)
        }
        if cooled { counters[deployment]?.increment() }
        // The other replicas skip it too (a retry-after alone cools it as well).
        if let until, cooled || retryAfter != nil, until > now, let report = reporter.withLock({ $0 }) {
            report(deployment, until - now)
        }
    }

    private let reporter = Mutex<(@Sendable (String, Duration) -> Void)?>(nil)

    /// Set at startup: how a cooldown that began here reaches the other replicas.
    func onCooled(_ report: @escaping @Sendable (String, Duration) -> Void) {
        reporter.withLock { $0 = report }
    }

    /// Another replica saw the deployment fail: skip it here until then as well.
    func cool(_ deployment: String, for duration: Duration) {
        let now = clock.now
        states.withLock { $0[deployment, default: CooldownState()].cool(until: now + duration) }
    }
}
