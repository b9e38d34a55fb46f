import Synchronization
import SwitchyardCore

/// Runs the producer of an `UpstreamEvents` in a task of its own, so that the provider can return as
/// soon as the response has started while the relay consumes events at its own pace.
enum EventPump {
    /// `produce` yields payloads and returns when the upstream has nothing more; finishing the events
    /// early (at `[DONE]`) is allowed and leaves `produce` running (to drain the connection for reuse).
    /// The task is cancelled when the consumer cancels, or through the `Pump` `produce` is given (a
    /// watchdog's timer). `onEnd` runs when the task is over (the connection is back in the pool or
    /// closed).
    static func start(
        onEnd: @escaping @Sendable () -> Void = {}, _ produce: @escaping @Sendable (UpstreamEvents, Pump) async throws -> Void
    ) -> UpstreamEvents {
        let events = UpstreamEvents()
        let pump = Pump()
        let task = Task(executorPreference: LoopExecutor.current) {
            defer { onEnd() }
            do {
                try await produce(events, pump)
                events.finish()
            } catch {
                events.finish(throwing: Task.isCancelled ? CancellationError() : error)
            }
        }
        pump.started(task)
        events.onCancel { pump.cancel() }
        return events
    }

    /// The producer's task, cancellable from outside it (before or after it is known).
    final class Pump: Sendable {
        private struct State {
            var task: Task<Void, Never>?
            var cancelled = false
        }

        private let state = Mutex(State())

        fileprivate func started(_ task: Task<Void, Never>) {
            let cancelNow = state.withLock { state -> Bool in
                state.task = task
                return state.cancelled
            }
            if cancelNow { task.cancel() }
        }

        func cancel() {
            let task = state.withLock { state -> Task<Void, Never>? in
                state.cancelled = true
                return state.task
            }
            task?.cancel()
        }
    }
}
