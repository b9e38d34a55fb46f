/// Runs `operation` so that it is cancelled the moment the client goes away (or the calling task
/// is cancelled). A task of its own is needed because a client's departure is noticed on the
/// connection's event loop, outside the request's task, and only a task handle can be cancelled
/// from there.
func untilClientGone<T: Sendable>(
    _ client: ClientConnection?,
    _ operation: @escaping @Sendable () async throws -> T
) async throws -> T {
    guard let client else { return try await operation() }
    let task = Task { try await operation() }
    let registration = client.onGone { task.cancel() }
    defer { registration.cancel() }
    return try await withTaskCancellationHandler {
        try await task.value
    } onCancel: {
        task.cancel()
    }
}
