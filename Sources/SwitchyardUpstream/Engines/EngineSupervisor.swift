import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import SwitchyardCore
import Synchronization

/// What the supervisor reports as engines change (the gateway's metrics).
public protocol EngineObserver: Sendable {
    func engine(_ name: String, state: EngineState)
    func engine(_ name: String, loadedIn duration: Duration)
    func engineCrashed(_ name: String)
    func engine(_ name: String, waiting: Int)
}

/// One engine as an operator sees it (`GET /admin/v1/engines`).
public struct EngineSnapshot: Sendable {
    public var name: String
    public var state: EngineState
    public var group: String?
    public var pid: Int32?
    public var port: Int?
    public var lastUsedUnixMillis: Int64?
    public var loads: Int
    public var lastLoad: Duration?
    public var crashes: Int
    public var inFlight: Int
    public var waiting: Int
}

/// Runs the managed engines: performs what `EngineFleet` decides (spawn, poll health, SIGTERM,
/// SIGKILL, admit or fail waiting requests) and feeds it what happens (health, exits, time). A
/// `Service`: on shutdown it stops every engine it started and returns once they are all gone.
public final class EngineSupervisor: Service, Sendable {
    struct Running: Sendable {
        var process: EngineProcess
        var epoch: Int
    }

    struct State {
        var fleet: EngineFleet
        var waiters: [EngineWaiterID: CheckedContinuation<Void, any Error>] = [:]
        var nextWaiter: EngineWaiterID = 0
        /// The port of each engine's current process, known from just before it is spawned.
        var ports: [String: Int] = [:]
        var running: [String: Running] = [:]
        /// Continuations to resume once the lock is released.
        var resumes: [(CheckedContinuation<Void, any Error>, (any Error)?)] = []
        var wake: CheckedContinuation<Void, Never>?
        var woken = false
        var reported: [String: Report] = [:]
    }

    struct Report: Equatable {
        var state: EngineState
        var waiting: Int
        var loads: Int
        var crashes: Int
    }

    let engines: [String: ManagedEngine]
    let clock: any GatewayClock
    let logger: Logger
    let observer: (any EngineObserver)?
    /// For health checks; nil when there are no engines.
    let http: HTTPClient?
    let eventLoopGroup: any EventLoopGroup
    let spawner = SpawnThread()
    let state: Mutex<State>

    init(
        configs: [ProviderConfig], settings: EnginesConfig, clock: any GatewayClock, logger: Logger,
        observer: (any EngineObserver)?, http: HTTPClient?, eventLoopGroup: any EventLoopGroup
    ) {
        var engines: [String: ManagedEngine] = [:]
        var specs: [EngineSpec] = []
        for config in configs {
            guard let engine = config.managed else { continue }
            engines[config.name] = engine
            specs.append(EngineSpec(config, engine: engine))
        }
        self.engines = engines
        self.clock = clock
        self.logger = logger
        self.observer = observer
        self.http = http
        self.eventLoopGroup = eventLoopGroup
        state = Mutex(State(fleet: EngineFleet(specs, maxRunning: settings.maxRunning, now: clock.now)))
        for spec in specs { observer?.engine(spec.name, state: .stopped) }
    }

    public var isEmpty: Bool { engines.isEmpty }

    // MARK: requests

    /// Waits until `name` may take a request (starting it if needed), in line with the other
    /// requests waiting for the same load; returns how long that took. Cancelling the calling task
    /// leaves the line (and abandons the load when nobody else waits).
    public func prepare(_ name: String) async throws -> Duration {
        let started = clock.now
        let id = state.withLock { state in
            state.nextWaiter += 1
            return state.nextWaiter
        }
        var waited = false
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                apply { state, now in
                    guard !Task.isCancelled else {
                        state.resumes.append((continuation, CancellationError()))
                        return []
                    }
                    let (admission, actions) = state.fleet.request(name, waiter: id, now: now)
                    switch admission {
                    case .admitted: state.resumes.append((continuation, nil))
                    case .waiting:
                        waited = true
                        state.waiters[id] = continuation
                    case .refused(let failure): state.resumes.append((continuation, Self.error(failure, engine: name)))
                    }
                    return actions
                }
            }
        } onCancel: {
            apply { state, now in
                guard let continuation = state.waiters.removeValue(forKey: id) else { return [] }
                state.resumes.append((continuation, CancellationError()))
                return state.fleet.cancel(name, waiter: id, now: now)
            }
        }
        return waited ? clock.now - started : .zero
    }

    /// A request to `name` begins: its port. Counted in flight until `end`.
    func begin(_ name: String) async throws -> Int {
        for _ in 0..<3 {
            let port = state.withLock { state in state.fleet.begin(name, now: clock.now) ? state.ports[name] : nil }
            if let port { return port }
            _ = try await prepare(name)
        }
        throw Self.error(.exited, engine: name)
    }

    /// The response of a request begun with `begin` is over.
    func end(_ name: String) {
        apply { state, now in state.fleet.end(name, now: now) }
    }

    // MARK: operators

    public func start(_ name: String) -> Bool {
        guard engines[name] != nil else { return false }
        apply { state, now in state.fleet.start(name, now: now) }
        return true
    }

    public func stop(_ name: String) -> Bool {
        guard engines[name] != nil else { return false }
        apply { state, now in state.fleet.stop(name, now: now) }
        return true
    }

    /// Whether the engine is serving now (a request for it would not wait for a load).
    public func isReady(_ name: String) -> Bool {
        state.withLock { $0.fleet.engines[name]?.state == .ready }
    }

    /// The port of the engine while it is serving.
    func readyPort(_ name: String) -> Int? {
        state.withLock { $0.fleet.engines[name]?.state == .ready ? $0.ports[name] : nil }
    }

    public var snapshots: [EngineSnapshot] {
        let now = clock.now
        let unixNow = clock.unixMillis
        return state.withLock { state in
            state.fleet.engines.values.sorted { $0.spec.name < $1.spec.name }.map { engine in
                let name = engine.spec.name
                let alive = engine.state == .starting || engine.state == .ready || engine.state == .stopping
                return EngineSnapshot(
                    name: name, state: engine.state, group: engine.spec.group,
                    pid: alive ? state.running[name]?.process.pid : nil, port: alive ? state.ports[name] : nil,
                    lastUsedUnixMillis: engine.lastUsed.map { unixNow - (now - $0).millis }, loads: engine.loads,
                    lastLoad: engine.lastLoad, crashes: engine.crashes, inFlight: engine.inFlight, waiting: engine.waiters.count)
            }
        }
    }

    // MARK: performing

    /// Changes the fleet under the lock, then (outside it) resumes the requests it admitted or
    /// failed, performs the process actions, reports what changed and wakes the run loop to look
    /// at the deadlines again (`wake: false` is the run loop itself, which would spin otherwise).
    func apply(wake wakeLoop: Bool = true, _ change: (inout State, ContinuousClock.Instant) -> [EngineAction]) {
        let now = clock.now
        let (actions, resumes, reports, wake) = state.withLock { state in
            let actions = change(&state, now)
            for action in actions {
                switch action {
                case .admit(_, let ids):
                    for id in ids { if let waiter = state.waiters.removeValue(forKey: id) { state.resumes.append((waiter, nil)) } }
                case .fail(let name, let ids, let failure):
                    for id in ids {
                        if let waiter = state.waiters.removeValue(forKey: id) {
                            state.resumes.append((waiter, Self.error(failure, engine: name)))
                        }
                    }
                default: break
                }
            }
            let resumes = state.resumes
            state.resumes = []
            var reports: [(String, Report, Report?)] = []
            for (name, engine) in state.fleet.engines {
                let report = Report(
                    state: engine.state, waiting: engine.waiters.count, loads: engine.loads, crashes: engine.crashes)
                let previous = state.reported[name]
                if previous != report {
                    reports.append((name, report, previous))
                    state.reported[name] = report
                }
            }
            var wake: CheckedContinuation<Void, Never>?
            if wakeLoop {
                wake = state.wake
                state.wake = nil
                if wake == nil { state.woken = true }
            }
            return (actions, resumes, reports, wake)
        }
        for (continuation, error) in resumes {
            if let error { continuation.resume(throwing: error) } else { continuation.resume() }
        }
        for action in actions { perform(action) }
        report(reports)
        wake?.resume()
    }

    private func perform(_ action: EngineAction) {
        switch action {
        case .spawn(let name, let epoch):
            Task { await spawn(name, epoch: epoch) }
        case .terminate(let name, let epoch):
            logger.debug("stopping engine", metadata: ["engine": .string(name)])
            signal(name, epoch: epoch, SIGTERM)
        case .kill(let name, let epoch):
            logger.warning("engine did not stop in time; killing its process group", metadata: ["engine": .string(name)])
            signal(name, epoch: epoch, SIGKILL)
        case .admit, .fail:
            break
        }
    }

    private func signal(_ name: String, epoch: Int, _ number: Int32) {
        let running = state.withLock { $0.running[name] }
        if let running, running.epoch == epoch { running.process.signalGroup(number) }
    }

    private func report(_ reports: [(String, Report, Report?)]) {
        guard let observer else { return }
        for (name, report, previous) in reports {
            if report.state != previous?.state { observer.engine(name, state: report.state) }
            if report.waiting != previous?.waiting { observer.engine(name, waiting: report.waiting) }
            if report.crashes > previous?.crashes ?? 0 { observer.engineCrashed(name) }
            if report.loads > previous?.loads ?? 0,
                let load = state.withLock({ $0.fleet.engines[name]?.lastLoad })
            {
                observer.engine(name, loadedIn: load)
            }
        }
    }

    static func error(_ failure: EngineFailure, engine: String) -> any Error {
        switch failure {
        case .overloaded: UpstreamError.overloaded
        case .startTimedOut: GatewayError.engineUnavailable(engine, "it did not get ready within its start_timeout")
        case .exited: GatewayError.engineUnavailable(engine, "its process exited while it was starting")
        case .stopped: GatewayError.engineUnavailable(engine, "an operator stopped it")
        case .shuttingDown: GatewayError.engineUnavailable(engine, "the gateway is shutting down")
        case .unknownEngine: GatewayError.engineUnavailable(engine, "no such engine")
        }
    }
}
