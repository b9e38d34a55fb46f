import Synchronization

/// Waits at most `limit` for `operation`, which runs in a task of its own: when the time is up the
/// caller gets `BillingStoreError.unavailable` at once while the operation is left to finish (or
/// fail) unobserved. For reads of a database that may hang — a network partition sends no reset, so
/// a query can wait for minutes — where the caller must answer (503) rather than wait with it.
///
/// Only for operations whose late completion changes nothing that matters: a read, or an admission
/// whose counts would err on the side of the limit. Never for a hold or a settlement.
public func answered<T: Sendable>(
    within limit: Duration, _ operation: @escaping @Sendable () async throws -> T
) async throws -> T {
    try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
        let gate = ContinuationGate(continuation)
        let timer = Task {
            try? await Task.sleep(for: limit)
            gate.resume(with: .failure(BillingStoreError.unavailable))
        }
        Task {
            let result = await Result(catching: operation)
            gate.resume(with: result)
            timer.cancel()
        }
    }
}

/// Resumes its continuation once; later resumptions are dropped.
private final class ContinuationGate<T: Sendable>: Sendable {
    private let continuation: Mutex<CheckedContinuation<T, any Error>?>

    init(_ continuation: CheckedContinuation<T, any Error>) {
        self.continuation = Mutex(continuation)
    }

    func resume(with result: Result<T, any Error>) {
        let taken = continuation.withLock { value -> CheckedContinuation<T, any Error>? in
            defer { value = nil }
            return value
        }
        taken?.resume(with: result)
    }
}

extension Result where Failure == any Error {
    init(catching body: () async throws -> Success) async {
        do {
            self = .success(try await body())
        } catch {
            self = .failure(error)
        }
    }
}
