import SwitchyardCore

/// Runs the producer of an `UpstreamEvents` in a task of its own, so that the provider can return as
/// soon as the response has started while the relay consumes events at its own pace.
enum EventPump {
    /// `produce` yields payloads and returns when the upstream has nothing more; finishing the events
    /// early (at `[DONE]`) is allowed and leaves `produce` running (to drain the connection for reuse).
    /// The task is cancelled when the consumer cancels. `onEnd` runs when the task is over (the
    /// connection is back in the pool or closed).
    static func start(
        onEnd: @escaping @Sendable () -> Void = {}, _ produce: @escaping @Sendable (UpstreamEvents) async throws -> Void
    ) -> UpstreamEvents {
        let events = UpstreamEvents()
        let task = Task {
            defer { onEnd() }
            do {
                try await produce(events)
                events.finish()
            } catch {
                events.finish(throwing: Task.isCancelled ? CancellationError() : error)
            }
        }
        events.onCancel { task.cancel() }
        return events
    }
}
