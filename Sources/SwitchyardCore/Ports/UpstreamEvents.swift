import Synchronization

/// The `data:` payloads of an upstream's server-sent events, in order, `[DONE]` excluded: a
/// single-consumer queue between the task reading the upstream and the relay writing to the client.
///
/// It ends normally only when the upstream sent `[DONE]` (or the producer had nothing more); an
/// upstream that stops early, stalls past its timeout or breaks ends it with an error. Unlike an
/// `AsyncStream` iterator it is `Sendable`, so the relay can read the first event before it commits
/// to a response status and the rest inside the response body.
public final class UpstreamEvents: Sendable {
    private struct State {
        var buffer: [[UInt8]] = []
        var head = 0
        var end: Result<Void, any Error>?
        var waiter: CheckedContinuation<[UInt8]?, any Error>?
        var cancelled = false
        var onCancel: (@Sendable () -> Void)?
    }

    private let state = Mutex(State())

    public init() {}

    // MARK: producer

    public func yield(_ payload: [UInt8]) {
        let waiter = state.withLock { state -> CheckedContinuation<[UInt8]?, any Error>? in
            guard state.end == nil else { return nil }
            if let waiter = state.waiter {
                state.waiter = nil
                return waiter
            }
            state.buffer.append(payload)
            return nil
        }
        waiter?.resume(returning: payload)
    }

    /// Ends the sequence after what is buffered; later calls do nothing.
    public func finish(throwing error: (any Error)? = nil) {
        let (waiter, end) = state.withLock { state -> (CheckedContinuation<[UInt8]?, any Error>?, Result<Void, any Error>?) in
            guard state.end == nil else { return (nil, nil) }
            let end: Result<Void, any Error> = error.map { .failure($0) } ?? .success(())
            state.end = end
            let waiter = state.waiter
            state.waiter = nil
            return (waiter, end)
        }
        guard let waiter, let end else { return }
        switch end {
        case .success: waiter.resume(returning: nil)
        case .failure(let error): waiter.resume(throwing: error)
        }
    }

    /// What stops the producer when the consumer cancels; runs at once if it already has.
    public func onCancel(_ handler: @escaping @Sendable () -> Void) {
        let runNow = state.withLock { state -> Bool in
            if state.cancelled { return true }
            state.onCancel = handler
            return false
        }
        if runNow { handler() }
    }

    // MARK: consumer

    /// The next payload, `nil` at a normal end. Cancelling the calling task cancels the sequence.
    public func next() async throws -> [UInt8]? {
        if let ready = try state.withLock({ try Self.take(&$0) }) { return ready }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                let result = state.withLock { state -> Result<[UInt8]?, any Error>? in
                    do {
                        if let ready = try Self.take(&state) { return .success(ready) }
                    } catch {
                        return .failure(error)
                    }
                    state.waiter = continuation
                    return nil
                }
                if let result { continuation.resume(with: result) }
            }
        } onCancel: {
            cancel()
        }
    }

    /// A buffered payload; `.some(nil)` at the end; `nil` when the caller must wait.
    private static func take(_ state: inout State) throws -> [UInt8]?? {
        if state.head < state.buffer.count {
            let payload = state.buffer[state.head]
            state.head += 1
            if state.head == state.buffer.count {
                state.buffer.removeAll(keepingCapacity: true)
                state.head = 0
            }
            return .some(payload)
        }
        switch state.end {
        case .success?: return .some(nil)
        case .failure(let error)?: throw error
        case nil: return nil
        }
    }

    /// Stops the upstream request at once (closing its connection); the consumer then sees
    /// `CancellationError`. Safe to call more than once and after the end.
    public func cancel() {
        let (handler, waiter) = state.withLock { state -> ((@Sendable () -> Void)?, CheckedContinuation<[UInt8]?, any Error>?) in
            guard !state.cancelled else { return (nil, nil) }
            state.cancelled = true
            if state.end == nil { state.end = .failure(CancellationError()) }
            state.buffer.removeAll()
            state.head = 0
            let handler = state.onCancel
            state.onCancel = nil
            let waiter = state.waiter
            state.waiter = nil
            return (handler, waiter)
        }
        waiter?.resume(throwing: CancellationError())
        handler?()
    }
}
