import Synchronization
import SwitchyardCore

/// Bounds the requests in flight to one upstream to its connection pool's size, and the requests
/// waiting for a connection to `maxWaiters`: a burst beyond both is refused at once
/// (`UpstreamError.overloaded`) instead of piling up in the HTTP client's own unbounded queue.
/// Waiters are served first come, first served; a waiter that is cancelled leaves the queue.
public final class ConnectionGate: Sendable {
    private struct State {
        var inUse = 0
        var nextID = 0
        var waiters: [(id: Int, continuation: CheckedContinuation<Void, any Error>)] = []
    }

    public let capacity: Int
    public let maxWaiters: Int
    private let state = Mutex(State())

    public init(capacity: Int, maxWaiters: Int) {
        self.capacity = max(1, capacity)
        self.maxWaiters = max(0, maxWaiters)
    }

    /// The slots taken now.
    public var inUse: Int { state.withLock { $0.inUse } }

    /// Takes a slot if one is free, without waiting.
    public func tryAcquire() -> Bool {
        state.withLock { state in
            guard state.inUse < capacity else { return false }
            state.inUse += 1
            return true
        }
    }

    /// Takes a slot, waiting for one if needed; throws `UpstreamError.overloaded` when the queue is
    /// full, `CancellationError` when cancelled while waiting. Every successful call needs one `release`.
    public func acquire() async throws {
        let id = try state.withLock { state -> Int? in
            if state.inUse < capacity {
                state.inUse += 1
                return nil
            }
            guard state.waiters.count < maxWaiters else { throw UpstreamError.overloaded }
            state.nextID += 1
            return state.nextID
        }
        guard let id else { return }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let outcome = state.withLock { state -> Result<Void, any Error>? in
                    // Cancelled before queueing: the handler below found nothing to remove.
                    if Task.isCancelled { return .failure(CancellationError()) }
                    if state.inUse < capacity {
                        state.inUse += 1
                        return .success(())
                    }
                    guard state.waiters.count < maxWaiters else { return .failure(UpstreamError.overloaded) }
                    state.waiters.append((id, continuation))
                    return nil
                }
                if let outcome { continuation.resume(with: outcome) }
            }
        } onCancel: {
            let waiter = state.withLock { state -> CheckedContinuation<Void, any Error>? in
                guard let index = state.waiters.firstIndex(where: { $0.id == id }) else { return nil }
                return state.waiters.remove(at: index).continuation
            }
            waiter?.resume(throwing: CancellationError())
        }
    }

    /// Gives a slot back, straight to the longest waiter if there is one.
    public func release() {
        let next = state.withLock { state -> CheckedContinuation<Void, any Error>? in
            if state.waiters.isEmpty {
                state.inUse = max(0, state.inUse - 1)
                return nil
            }
            return state.waiters.removeFirst().continuation
        }
        next?.resume()
    }

    /// Slots in use and requests waiting, for tests and diagnostics.
    public var usage: (inUse: Int, waiting: Int) {
        state.withLock { ($0.inUse, $0.waiters.count) }
    }
}

/// One slot of a `ConnectionGate`, released exactly once however the exchange ends.
final class GateLease: Sendable {
    private let gate: ConnectionGate
    private let released = Atomic<Bool>(false)

    init(_ gate: ConnectionGate) {
        self.gate = gate
    }

    func release() {
        if !released.exchange(true, ordering: .acquiringAndReleasing) { gate.release() }
    }

    deinit { release() }
}
