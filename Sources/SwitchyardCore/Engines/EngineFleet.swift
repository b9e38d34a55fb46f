/// A request waiting for an engine, as the fleet knows it.
public typealias EngineWaiterID = UInt64

/// Where an engine process is in its life.
public enum EngineState: String, Sendable, CaseIterable {
    /// No process.
    case stopped
    /// Spawned, its health endpoint not yet 200.
    case starting
    /// Serving.
    case ready
    /// SIGTERM sent (SIGKILL after `stop_timeout`), the process not yet gone.
    case stopping
    /// Exited without being asked to, or never got ready; the next start waits out a backoff.
    case crashed

    /// Whether a process may be alive (it takes a slot of `max_running` and of its group).
    var isAlive: Bool { self == .starting || self == .ready || self == .stopping }
}

/// Why a request waiting for an engine was turned away.
public enum EngineFailure: Error, Sendable, Equatable {
    case startTimedOut
    /// The process exited before it was ready.
    case exited
    /// An operator stopped the engine.
    case stopped
    case shuttingDown
    /// `max_queue` requests already wait for it.
    case overloaded
    case unknownEngine
}

/// What the supervisor must do; the fleet decides, the supervisor only performs.
public enum EngineAction: Sendable, Equatable {
    /// Start the process (on a fresh port) and poll its health; `epoch` tags the events it causes.
    case spawn(String, epoch: Int)
    /// SIGTERM to the process group.
    case terminate(String, epoch: Int)
    /// SIGKILL to the process group.
    case kill(String, epoch: Int)
    /// These waiters may send now.
    case admit(String, [EngineWaiterID])
    case fail(String, [EngineWaiterID], EngineFailure)
}

/// What the fleet needs to know of one engine.
public struct EngineSpec: Sendable, Equatable {
    public var name: String
    public var group: String?
    public var startTimeout: Duration
    public var idleTimeout: Duration?
    public var stopTimeout: Duration
    public var maxQueue: Int
    public var abandonUnusedLoad: Bool

    public init(
        name: String, group: String? = nil, startTimeout: Duration = .seconds(300), idleTimeout: Duration? = nil,
        stopTimeout: Duration = .seconds(10), maxQueue: Int = 64, abandonUnusedLoad: Bool = true
    ) {
        self.name = name
        self.group = group
        self.startTimeout = startTimeout
        self.idleTimeout = idleTimeout
        self.stopTimeout = stopTimeout
        self.maxQueue = maxQueue
        self.abandonUnusedLoad = abandonUnusedLoad
    }

    public init(_ config: ProviderConfig, engine: ManagedEngine) {
        self.init(
            name: config.name, group: engine.group, startTimeout: engine.startTimeout, idleTimeout: engine.idleTimeout,
            stopTimeout: engine.stopTimeout, maxQueue: config.maxQueue, abandonUnusedLoad: engine.abandonUnusedLoad)
    }
}

/// Every managed engine's lifecycle, and the rules between them (one per group, `max_running`,
/// least recently used stopped first), as a pure value: events in, actions out, time passed in. The
/// supervisor holds it under a lock and performs the actions, so every edge is unit-tested without
/// processes or sleeps.
///
/// A request first asks to be admitted (`request`): at once when its engine is ready, else it waits
/// (FIFO, with the other waiters of the same load) until `healthy` admits them all. An admitted
/// request holds a reservation until its upstream request begins (`begin`), and is in flight until
/// its response ends (`end`); idle timeouts and group swaps see both.
public struct EngineFleet: Sendable {
    public struct Engine: Sendable {
        public let spec: EngineSpec
        public internal(set) var state: EngineState = .stopped
        /// Bumped by every spawn; events of an older process are ignored.
        public internal(set) var epoch = 0
        /// When `state` was entered.
        var since: ContinuousClock.Instant
        public internal(set) var waiters: [EngineWaiterID] = []
        /// Admitted requests whose upstream request has not begun, by admission time.
        var reservations: [ContinuousClock.Instant] = []
        public internal(set) var inFlight = 0
        public internal(set) var lastUsed: ContinuousClock.Instant?
        public internal(set) var loads = 0
        public internal(set) var lastLoad: Duration?
        /// Exits nobody asked for, and starts that timed out.
        public internal(set) var crashes = 0
        /// Failures since the last successful load: the backoff grows with them.
        var failures = 0
        /// Not restarted before this, after a crash.
        var retryAt: ContinuousClock.Instant?
        /// An operator asked for it to start: it loads even with nobody waiting.
        var wanted = false
        /// When the demand for a slot began (FIFO between engines waiting for one).
        var demandSince: ContinuousClock.Instant?
        /// Stopping because its start failed: crashed, not stopped, once it exits.
        var failedStart = false
        var killed = false

        /// Requests that keep it from being idle.
        public var busy: Int { inFlight + reservations.count }
        var hasDemand: Bool { !waiters.isEmpty || wanted }
    }

    public enum Admission: Sendable, Equatable {
        case admitted
        case waiting
        case refused(EngineFailure)
    }

    /// How long an admitted request may take to begin before its reservation lapses (its caller
    /// left between admission and sending, which nothing reports).
    public static let reservationLifetime: Duration = .seconds(10)

    public internal(set) var engines: [String: Engine]
    /// Names in configuration order, so that decisions are deterministic.
    let order: [String]
    public let maxRunning: Int?
    public internal(set) var shuttingDown = false

    public init(_ specs: [EngineSpec], maxRunning: Int?, now: ContinuousClock.Instant) {
        var engines: [String: Engine] = [:]
        for spec in specs { engines[spec.name] = Engine(spec: spec, since: now) }
        self.engines = engines
        self.order = specs.map(\.name)
        self.maxRunning = maxRunning
    }

    /// The pause before restarting after `failures` failures in a row: none after the first (a
    /// crash while serving restarts on the next request), then 1 s, doubling up to a minute.
    public static func backoff(failures: Int) -> Duration {
        guard failures > 1 else { return .zero }
        return min(.seconds(1 << min(failures - 2, 6)), .seconds(60))
    }

    // MARK: requests

    /// A request for `name` arrives: admitted now, queued, or refused.
    public mutating func request(_ name: String, waiter: EngineWaiterID, now: ContinuousClock.Instant)
        -> (Admission, [EngineAction])
    {
        guard var engine = engines[name] else { return (.refused(.unknownEngine), []) }
        if shuttingDown { return (.refused(.shuttingDown), []) }
        if engine.state == .ready && engine.waiters.isEmpty && !yielding(name) {
            engine.reservations.append(now)
            engine.lastUsed = now
            engines[name] = engine
            return (.admitted, reconcile(now: now))
        }
        guard engine.waiters.count < engine.spec.maxQueue else { return (.refused(.overloaded), []) }
        if !engine.hasDemand { engine.demandSince = now }
        engine.waiters.append(waiter)
        engines[name] = engine
        return (.waiting, reconcile(now: now))
    }

    /// A waiter left (its client went away or it was stopped).
    public mutating func cancel(_ name: String, waiter: EngineWaiterID, now: ContinuousClock.Instant) -> [EngineAction] {
        guard var engine = engines[name], let index = engine.waiters.firstIndex(of: waiter) else { return [] }
        engine.waiters.remove(at: index)
        if !engine.hasDemand { engine.demandSince = nil }
        engines[name] = engine
        return reconcile(now: now)
    }

    /// An admitted request begins its upstream request: its reservation becomes in flight. False
    /// when it holds none (it lapsed, or the engine crashed since) and the engine cannot take it
    /// now: it must be admitted again.
    public mutating func begin(_ name: String, now: ContinuousClock.Instant) -> Bool {
        guard var engine = engines[name] else { return false }
        if !engine.reservations.isEmpty {
            engine.reservations.removeFirst()
        } else if engine.state != .ready || !engine.waiters.isEmpty || yielding(name) {
            return false
        }
        engine.inFlight += 1
        engine.lastUsed = now
        engines[name] = engine
        return true
    }

    /// A request's response ended (whole, or its stream ended or was cancelled).
    public mutating func end(_ name: String, now: ContinuousClock.Instant) -> [EngineAction] {
        guard var engine = engines[name] else { return [] }
        engine.inFlight = max(0, engine.inFlight - 1)
        engine.lastUsed = now
        engines[name] = engine
        return reconcile(now: now)
    }

    // MARK: the process

    /// Its health endpoint answered 200: every waiter of this load is admitted.
    public mutating func healthy(_ name: String, epoch: Int, now: ContinuousClock.Instant) -> [EngineAction] {
        guard var engine = engines[name], engine.epoch == epoch, engine.state == .starting else { return [] }
        engine.loads += 1
        engine.lastLoad = now - engine.since
        engine.state = .ready
        engine.since = now
        engine.failures = 0
        engine.wanted = false
        engine.demandSince = nil
        engine.lastUsed = now
        let admitted = engine.waiters
        engine.reservations += admitted.map { _ in now }
        engine.waiters = []
        engines[name] = engine
        return (admitted.isEmpty ? [] : [.admit(name, admitted)]) + reconcile(now: now)
    }

    /// The process exited (or could not be spawned at all).
    public mutating func exited(_ name: String, epoch: Int, now: ContinuousClock.Instant) -> [EngineAction] {
        guard var engine = engines[name], engine.epoch == epoch, engine.state.isAlive else { return [] }
        var actions: [EngineAction] = []
        if engine.state == .stopping && !engine.failedStart {
            engine.state = .stopped
        } else {
            // A failed start was counted when it timed out; any other exit nobody asked for is a crash.
            if engine.state != .stopping { engine.crashes += 1 }
            if engine.state == .starting && !engine.waiters.isEmpty {
                // They waited for this load, which will not come; a later request starts a new one.
                actions.append(.fail(name, engine.waiters, .exited))
                engine.waiters = []
                engine.wanted = false
                engine.demandSince = nil
            }
            engine.failures += 1
            engine.state = .crashed
            engine.retryAt = now + Self.backoff(failures: engine.failures)
        }
        // Admitted requests that had not begun will wait for the restart instead of meeting a dead port.
        engine.reservations = []
        engine.since = now
        engine.failedStart = false
        engine.killed = false
        engines[name] = engine
        return actions + reconcile(now: now)
    }

    // MARK: operators and shutdown

    /// An operator asks for the engine to be loaded now.
    public mutating func start(_ name: String, now: ContinuousClock.Instant) -> [EngineAction] {
        guard var engine = engines[name], !shuttingDown else { return [] }
        if engine.state == .stopped || engine.state == .crashed {
            if !engine.hasDemand { engine.demandSince = now }
            engine.wanted = true
            engine.retryAt = nil
        }
        engines[name] = engine
        return reconcile(now: now)
    }

    /// An operator stops the engine now, requests in flight or not; those waiting for it fail.
    public mutating func stop(_ name: String, now: ContinuousClock.Instant) -> [EngineAction] {
        guard var engine = engines[name] else { return [] }
        var actions: [EngineAction] = []
        if !engine.waiters.isEmpty { actions.append(.fail(name, engine.waiters, .stopped)) }
        engine.waiters = []
        engine.wanted = false
        engine.demandSince = nil
        if engine.state == .crashed { engine.state = .stopped }
        engines[name] = engine
        if engine.state == .starting || engine.state == .ready { actions.append(terminate(name, now: now)) }
        return actions + reconcile(now: now)
    }

    /// The gateway stops: every waiter fails, every process is stopped, nothing starts again.
    public mutating func shutdown(now: ContinuousClock.Instant) -> [EngineAction] {
        shuttingDown = true
        var actions: [EngineAction] = []
        for name in order {
            guard var engine = engines[name] else { continue }
            if !engine.waiters.isEmpty { actions.append(.fail(name, engine.waiters, .shuttingDown)) }
            engine.waiters = []
            engine.wanted = false
            engine.demandSince = nil
            engines[name] = engine
            if engine.state == .starting || engine.state == .ready { actions.append(terminate(name, now: now)) }
        }
        return actions + reconcile(now: now)
    }

    /// Whether no process is alive (after `shutdown`: every engine it started is gone).
    public var allStopped: Bool { engines.values.allSatisfy { !$0.state.isAlive } }

    /// Time passed: timeouts and backoffs that are due take effect.
    public mutating func tick(now: ContinuousClock.Instant) -> [EngineAction] {
        reconcile(now: now)
    }
}
