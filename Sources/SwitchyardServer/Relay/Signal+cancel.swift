/// Runs `operation` so that it is cancelled the moment any of `signals` fires (the client went away,
/// the caller asked to stop) or the calling task is cancelled. A task of its own is needed because
/// signals fire outside the request's task (a client's departure is noticed on the connection's event
/// loop), and only a task handle can be cancelled from there.
func untilSignalled<T: Sendable>(
    _ signals: [Signal?],
    _ operation: @escaping @Sendable () async throws -> T
) async throws -> T {
    let present = signals.compactMap { $0 }
    guard !present.isEmpty else { return try await operation() }
    let task = Task { try await operation() }
    let registrations = present.map { $0.onFire { task.cancel() } }
    defer { registrations.forEach { $0.cancel() } }
    return try await withTaskCancellationHandler {
        try await task.value
    } onCancel: {
        task.cancel()
    }
}
