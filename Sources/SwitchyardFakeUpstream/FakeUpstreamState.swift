import Synchronization

/// Everything the fake upstream observes, shared between the event loops (connection
/// events), the request handlers and the test code that inspects it.
final class FakeUpstreamState: Sendable {
    /// Only the most recent requests are kept so that long benchmark runs stay in bounded memory.
    static let requestCapacity = 1000
    static let closeCapacity = 10_000

    private enum Waiter {
        case requests(threshold: Int, CheckedContinuation<Bool, Never>)
        case closes(threshold: Int, CheckedContinuation<ContinuousClock.Instant?, Never>)
    }

    private struct Storage {
        // Both lists grow to twice their capacity before being trimmed, so appending
        // stays amortised O(1) instead of shifting the whole array on every request.
        var requests: [FakeUpstream.RecordedRequest] = []
        var totalRequests = 0
        var closes: [ContinuousClock.Instant] = []
        var totalCloses = 0
        var openConnections = 0
        var nextWaiterID = 0
        var waiters: [Int: Waiter] = [:]
        // A waiter whose timeout or cancellation fired before it managed to register.
        var expiredEarly: Set<Int> = []

        /// The instant of the `ordinal`-th close (1-based), or the oldest one still retained.
        func closeInstant(ordinal: Int) -> ContinuousClock.Instant? {
            let dropped = totalCloses - closes.count
            let index = max(ordinal - 1 - dropped, 0)
            return index < closes.count ? closes[index] : nil
        }
    }

    private let storage = Mutex(Storage())

    // MARK: Requests

    /// Stores the request and returns its 1-based sequence number, used to make response ids unique.
    func record(_ request: FakeUpstream.RecordedRequest) -> Int {
        let (sequence, ready) = storage.withLock { storage in
            storage.requests.append(request)
            if storage.requests.count >= 2 * Self.requestCapacity {
                storage.requests.removeFirst(storage.requests.count - Self.requestCapacity)
            }
            storage.totalRequests += 1
            let total = storage.totalRequests
            var ready: [CheckedContinuation<Bool, Never>] = []
            for (id, waiter) in storage.waiters {
                if case .requests(let threshold, let continuation) = waiter, threshold <= total {
                    storage.waiters[id] = nil
                    ready.append(continuation)
                }
            }
            return (total, ready)
        }
        for continuation in ready { continuation.resume(returning: true) }
        return sequence
    }

    var requests: [FakeUpstream.RecordedRequest] {
        storage.withLock { Array($0.requests.suffix(Self.requestCapacity)) }
    }

    func clearRequests() {
        storage.withLock { $0.requests.removeAll() }
    }

    func waitForRequests(count: Int, timeout: Duration) async -> Bool {
        await withWaiterID(timeout: timeout) { id in
            await withCheckedContinuation { continuation in
                let immediate: Bool? = storage.withLock { storage in
                    if storage.totalRequests >= count { return true }
                    if storage.expiredEarly.remove(id) != nil { return false }
                    storage.waiters[id] = .requests(threshold: count, continuation)
                    return nil
                }
                if let immediate { continuation.resume(returning: immediate) }
            }
        }
    }

    // MARK: Connections

    func connectionOpened() {
        storage.withLock { $0.openConnections += 1 }
    }

    func connectionClosed(at instant: ContinuousClock.Instant) {
        let ready = storage.withLock { storage in
            storage.openConnections -= 1
            storage.closes.append(instant)
            if storage.closes.count >= 2 * Self.closeCapacity {
                storage.closes.removeFirst(storage.closes.count - Self.closeCapacity)
            }
            storage.totalCloses += 1
            let total = storage.totalCloses
            var ready: [CheckedContinuation<ContinuousClock.Instant?, Never>] = []
            for (id, waiter) in storage.waiters {
                if case .closes(let threshold, let continuation) = waiter, threshold <= total {
                    storage.waiters[id] = nil
                    ready.append(continuation)
                }
            }
            return ready
        }
        // Waiters are checked on every close, so any satisfied now asked for exactly this one.
        for continuation in ready { continuation.resume(returning: instant) }
    }

    var openConnections: Int {
        storage.withLock { $0.openConnections }
    }

    var closedConnections: [ContinuousClock.Instant] {
        storage.withLock { Array($0.closes.suffix(Self.closeCapacity)) }
    }

    func waitForClosedConnections(count: Int, timeout: Duration) async -> ContinuousClock.Instant? {
        await withWaiterID(timeout: timeout) { id in
            await withCheckedContinuation { continuation in
                let immediate: ContinuousClock.Instant?? = storage.withLock { storage in
                    if storage.totalCloses >= count { return .some(storage.closeInstant(ordinal: count)) }
                    if storage.expiredEarly.remove(id) != nil { return .some(nil) }
                    storage.waiters[id] = .closes(threshold: count, continuation)
                    return .none
                }
                if let immediate { continuation.resume(returning: immediate) }
            }
        }
    }

    // MARK: Waiting

    /// Runs `body` with a fresh waiter id that is expired (resumed with a negative answer)
    /// when `timeout` passes or the calling task is cancelled.
    private func withWaiterID<Result: Sendable>(
        timeout: Duration,
        _ body: (Int) async -> Result
    ) async -> Result {
        let id = storage.withLock { storage in
            storage.nextWaiterID += 1
            return storage.nextWaiterID
        }
        let timer = Task { [self] in
            guard (try? await Task.sleep(for: timeout)) != nil else { return }
            expire(id)
        }
        defer { timer.cancel() }
        return await withTaskCancellationHandler {
            await body(id)
        } onCancel: {
            expire(id)
        }
    }

    private func expire(_ id: Int) {
        let waiter: Waiter? = storage.withLock { storage in
            guard let waiter = storage.waiters.removeValue(forKey: id) else {
                storage.expiredEarly.insert(id)
                return nil
            }
            return waiter
        }
        switch waiter {
        case .requests(_, let continuation): continuation.resume(returning: false)
        case .closes(_, let continuation): continuation.resume(returning: nil)
        case nil: break
        }
    }
}
