import Synchronization

/// The requests this process is generating right now, so that their callers can stop them: all of
/// one end user's (`suspend_current_generate`) or one by the response id the client saw. Only the
/// owning account's key can stop a request; for anyone else it does not exist.
///
/// Requests live in one process: with several replicas behind a load balancer a stop must reach the
/// replica that runs the request (route `/llm_api/{openid}/…` by key, or retry the stop on each).
final class InFlight: Sendable {
    private struct Entry {
        var accountID: String
        var endUser: String?
        var stop: Signal
        var model: String
        var created: Int
    }

    private let entries = Mutex<[String: Entry]>([:])
    /// Fires when the gateway shuts down and the drain time is over: every request is stopped.
    private let shutdown: Signal

    init(shutdown: Signal = Signal()) {
        self.shutdown = shutdown
        _ = shutdown.onFire { [weak self] in self?.stopAll() }
    }

    func register(id: String, accountID: String, endUser: String?, stop: Signal, model: String = "", created: Int = 0) {
        entries.withLock {
            $0[id] = Entry(accountID: accountID, endUser: endUser, stop: stop, model: model, created: created)
        }
        // Checked after registering, so a request admitted while the others are being stopped is
        // stopped too: either `stopAll` saw its entry or this sees the signal.
        if shutdown.hasFired { stop.fire() }
    }

    func unregister(id: String) {
        _ = entries.withLock { $0.removeValue(forKey: id) }
    }

    /// The public model and creation time of a request the account is running, if it is.
    func running(id: String, accountID: String) -> (model: String, created: Int)? {
        entries.withLock { entries in
            guard let entry = entries[id], entry.accountID == accountID else { return nil }
            return (entry.model, entry.created)
        }
    }

    /// Stops the request if it is running and belongs to the account.
    func stop(id: String, accountID: String) -> Bool {
        let entry = entries.withLock { entries -> Entry? in
            guard let entry = entries[id], entry.accountID == accountID else { return nil }
            return entry
        }
        guard let entry else { return false }
        entry.stop.fire()
        return true
    }

    /// Stops every running request of the account's end user (`endUser` empty: those without one);
    /// returns how many.
    func stop(accountID: String, endUser: String) -> Int {
        let matching = entries.withLock { entries in
            entries.values.filter { $0.accountID == accountID && ($0.endUser ?? "") == endUser && !$0.stop.hasFired }
        }
        matching.forEach { $0.stop.fire() }
        return matching.count
    }

    private func stopAll() {
        entries.withLock { Array($0.values) }.forEach { $0.stop.fire() }
    }

    var count: Int { entries.withLock { $0.count } }
}
