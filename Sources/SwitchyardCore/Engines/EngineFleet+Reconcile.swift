/// The rules applied after every event: timeouts, abandoned loads, idle engines, and which engine
/// gets a slot (its group's, and one of `max_running`).
extension EngineFleet {
    /// Whether another engine of `name`'s group wants to run: then `name` takes no new requests, so
    /// that its in-flight requests drain and the swap can happen.
    func yielding(_ name: String) -> Bool {
        guard let group = engines[name]?.spec.group else { return false }
        return engines.values.contains { other in
            other.spec.name != name && other.spec.group == group && other.hasDemand && !other.state.isAlive
        }
    }

    /// SIGTERM, and the state that waits for the exit.
    mutating func terminate(_ name: String, now: ContinuousClock.Instant) -> EngineAction {
        engines[name]?.state = .stopping
        engines[name]?.since = now
        engines[name]?.killed = false
        return .terminate(name, epoch: engines[name]?.epoch ?? 0)
    }

    /// The earliest instant at which `tick` has something to do, if any.
    public var nextDeadline: ContinuousClock.Instant? {
        var deadlines: [ContinuousClock.Instant] = []
        for engine in engines.values {
            if let first = engine.reservations.first { deadlines.append(first + Self.reservationLifetime) }
            switch engine.state {
            case .starting: deadlines.append(engine.since + engine.spec.startTimeout)
            case .stopping where !engine.killed: deadlines.append(engine.since + engine.spec.stopTimeout)
            case .ready:
                if let idle = engine.spec.idleTimeout, engine.busy == 0, engine.waiters.isEmpty, let used = engine.lastUsed {
                    deadlines.append(used + idle)
                }
            case .crashed:
                if engine.hasDemand, let retryAt = engine.retryAt { deadlines.append(retryAt) }
            default: break
            }
        }
        return deadlines.min()
    }

    mutating func reconcile(now: ContinuousClock.Instant) -> [EngineAction] {
        var actions: [EngineAction] = []
        for name in order {
            guard var engine = engines[name] else { continue }
            engine.reservations.removeAll { now - $0 >= Self.reservationLifetime }
            engines[name] = engine
            switch engine.state {
            case .starting where now - engine.since >= engine.spec.startTimeout:
                if !engine.waiters.isEmpty { actions.append(.fail(name, engine.waiters, .startTimedOut)) }
                engine.waiters = []
                engine.wanted = false
                engine.demandSince = nil
                engine.crashes += 1
                engine.failedStart = true
                engines[name] = engine
                actions.append(terminate(name, now: now))
            case .starting where engine.waiters.isEmpty && !engine.wanted && engine.spec.abandonUnusedLoad:
                // Nobody waits for this load any more.
                actions.append(terminate(name, now: now))
            case .stopping where !engine.killed && now - engine.since >= engine.spec.stopTimeout:
                engines[name]?.killed = true
                actions.append(.kill(name, epoch: engine.epoch))
            case .ready:
                if let idle = engine.spec.idleTimeout, engine.busy == 0, engine.waiters.isEmpty,
                    let used = engine.lastUsed, now - used >= idle
                {
                    actions.append(terminate(name, now: now))
                } else if !engine.waiters.isEmpty && !yielding(name) {
                    // They waited for a swap that no longer comes (its requests left).
                    engine.reservations += engine.waiters.map { _ in now }
                    engine.lastUsed = now
                    actions.append(.admit(name, engine.waiters))
                    engine.waiters = []
                    engine.demandSince = nil
                    engines[name] = engine
                }
            default: break
            }
        }
        actions += assignSlots(now: now)
        return actions
    }

    /// Starts the engines that want to run and may, oldest demand first; for those that may not yet,
    /// stops what stands in their way once it is idle (their group's running engine once nothing is
    /// in flight to it; for `max_running`, the least recently used idle engine).
    private mutating func assignSlots(now: ContinuousClock.Instant) -> [EngineAction] {
        guard !shuttingDown else { return [] }
        var actions: [EngineAction] = []
        let pending = order.compactMap { engines[$0] }.filter { engine in
            guard engine.hasDemand else { return false }
            if engine.state == .stopped { return true }
            return engine.state == .crashed && (engine.retryAt ?? now) <= now
        }.sorted { ($0.demandSince ?? now) < ($1.demandSince ?? now) }
        for candidate in pending {
            let name = candidate.spec.name
            let mates = order.compactMap { engines[$0] }.filter { other in
                other.spec.name != name && candidate.spec.group != nil && other.spec.group == candidate.spec.group
                    && other.state.isAlive
            }
            let alive = engines.values.filter { $0.state.isAlive }
            if mates.isEmpty && alive.count < (maxRunning ?? .max) {
                engines[name]?.epoch += 1
                engines[name]?.state = .starting
                engines[name]?.since = now
                engines[name]?.retryAt = nil
                actions.append(.spawn(name, epoch: engines[name]?.epoch ?? 0))
                continue
            }
            if !mates.isEmpty {
                for mate in mates where mate.state == .ready && mate.busy == 0 {
                    actions.append(terminate(mate.spec.name, now: now))
                }
                continue
            }
            // A slot is already on its way when an engine is stopping.
            guard !alive.contains(where: { $0.state == .stopping }) else { continue }
            let victim = alive.filter { $0.state == .ready && $0.busy == 0 && $0.waiters.isEmpty }
                .min { ($0.lastUsed ?? $0.since) < ($1.lastUsed ?? $1.since) }
            if let victim { actions.append(terminate(victim.spec.name, now: now)) }
        }
        return actions
    }
}
