import Synchronization

/// Runs `operation` so that it is cancelled the moment any of `signals` fires (the client went away,
/// the caller asked to stop) or the calling task is cancelled.
///
/// Signals fire outside the request's task (a client's departure is noticed on the connection's
/// event loop), where no task can be cancelled directly; so the operation runs as a child of a task
/// group beside a second child that waits for the first signal, and whichever finishes first ends the
/// other. Structured: both children are done when this returns.
func untilSignalled<T: Sendable>(
    _ signals: [Signal?],
    _ operation: @escaping @Sendable () async throws -> T
) async throws -> T {
    let present = signals.compactMap { $0 }
    guard !present.isEmpty else { return try await operation() }
    if present.contains(where: \.hasFired) { throw CancellationError() }
    return try await withThrowingTaskGroup(of: T?.self) { group in
        group.addTask { try await operation() }
        group.addTask {
            await Signal.firstFire(of: present)
            return nil
        }
        defer { group.cancelAll() }
        // A signal first cancels the operation; its own answer (it may end cleanly with what it
        // had, as an assembled stream does) is then the result.
        while let next = try await group.next() {
            if let value = next { return value }
            group.cancelAll()
        }
        throw CancellationError()
    }
}

extension Signal {
    /// Returns when any of `signals` fires, or when the calling task is cancelled.
    static func firstFire(of signals: [Signal]) async {
        let waiter = FireWaiter()
        let registrations = signals.map { $0.onFire { waiter.resume() } }
        defer { registrations.forEach { $0.cancel() } }
        await withTaskCancellationHandler {
            await waiter.wait()
        } onCancel: {
            waiter.resume()
        }
    }
}

/// A one-shot wake-up that may come before or after the wait begins.
private final class FireWaiter: Sendable {
    private struct State {
        var fired = false
        var continuation: CheckedContinuation<Void, Never>?
    }

    private let state = Mutex(State())

    func wait() async {
        await withCheckedContinuation { continuation in
            let resumeNow = state.withLock { state -> Bool in
                if state.fired { return true }
                state.continuation = continuation
                return false
            }
            if resumeNow { continuation.resume() }
        }
    }

    func resume() {
        let continuation = state.withLock { state -> CheckedContinuation<Void, Never>? in
            state.fired = true
            defer { state.continuation = nil }
            return state.continuation
        }
        continuation?.resume()
    }
}
