import Logging
import SwitchyardCore

/// Writes a `BillingBatch` in one transaction: reads the rows it names (locked on PostgreSQL),
/// asks it for its decisions and writes them. Executors hold no billing rules of their own.
protocol BillingBatchExecutor: Sendable {
    /// One transaction for all of `writes`; throws when it failed as a whole (nothing was written).
    func execute(_ writes: [BillingWrite]) async throws -> [Result<BillingWriteResult, BillingStoreError>]
}

extension BillingBatchExecutor {
    /// Each write's answer. If the batch fails as a whole (the disk, a lock held past the busy
    /// timeout, a duplicate row inserted by another replica meanwhile), each write is tried again
    /// alone, so one bad write cannot fail its neighbours and each gets its own error.
    func apply(_ writes: [BillingWrite], logger: Logger) async -> [Result<BillingWriteResult, any Error>] {
        do {
            return try await execute(writes).map { $0.mapError { $0 } }
        } catch {
            guard writes.count > 1 else { return [.failure(error)] }
            logger.debug("a billing batch failed; writing its parts one by one", metadata: [
                "batch.size": "\(writes.count)", "error": "\(String(reflecting: error))",
            ])
        }
        var results: [Result<BillingWriteResult, any Error>] = []
        results.reserveCapacity(writes.count)
        for write in writes {
            results.append(contentsOf: await apply([write], logger: logger))
        }
        return results
    }
}
