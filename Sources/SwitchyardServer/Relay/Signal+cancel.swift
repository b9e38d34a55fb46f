import SwitchyardUpstream
import Synchronization

/// Runs `operation` so that it is cancelled the moment any of `signals` fires (the client went away,
/// the caller asked to stop) or the calling task is cancelled.
///
/// Signals fire outside the request's task (a client's departure is noticed on the connection's
/// event loop), where no task can be cancelled directly; so the operation runs as a task of its own
/// whose handle the signals (and the caller's cancellation) cancel. Its own answer after a
/// cancellation (it may end cleanly with what it had, as an assembled stream does) is the result.
/// One task per call: a task group with a second child waiting for the signals cost a task, a
/// continuation and a wake-up more, on every request.
func untilSignalled<T: Sendable>(
    _ signals: [Signal?],
    _ operation: @escaping @Sendable () async throws -> T
) async throws -> T {
    let present = signals.compactMap { $0 }
    guard !present.isEmpty else { return try await operation() }
    if present.contains(where: \.hasFired) { throw CancellationError() }
    let task = Task(executorPreference: LoopExecutor.current) { try await operation() }
    let registrations = present.map { $0.onFire { task.cancel() } }
    defer { registrations.forEach { $0.cancel() } }
    return try await withTaskCancellationHandler {
        try await task.value
    } onCancel: {
        task.cancel()
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
