import Dispatch
import SwitchyardCore

/// `BillingBatch` on SQLite, written on one thread of its own through `SQLiteDirect`: a batch from
/// `GroupCommit` is one hop to that thread and one transaction, its statements parsed once per
/// process and run at C speed. The rules are `BillingBatch`'s, as on the SQLKit path; this only reads
/// and writes rows. Everything else (accounts, keys, credits, reads, migrations, recovery) stays on
/// the SQLKit connection; the two share the database file, and SQLite's write lock (`BEGIN
/// IMMEDIATE`, with a busy timeout) keeps their transactions apart — which is also why the rows read
/// here need no further lock.
///
/// `@unchecked Sendable`: `connection` is only touched on `queue`.
final class SQLiteHotPath: BillingBatchExecutor, @unchecked Sendable {
    private let queue = DispatchQueue(label: "switchyard.billing.sqlite")
    private var connection: SQLiteDirect?
    /// The writer's thread as a task executor: group commit's loop runs on it (`GroupCommit`), so a
    /// batch is written where the loop took it, without a hop to this thread and one back.
    let executor: QueueExecutor

    /// Checkpoints the log off this thread (see there).
    let checkpointer: SQLiteCheckpointer

    init(path: String) throws {
        let connection = try SQLiteDirect(path: path)
        checkpointer = try SQLiteCheckpointer(path: path)
        checkpointer.watch(connection)
        self.connection = connection
        executor = QueueExecutor(queue)
    }

    func execute(_ writes: [BillingWrite]) async throws -> [Result<BillingWriteResult, BillingStoreError>] {
        if executor.isCurrent { return try executeOnQueue(writes) }
        return try await withCheckedThrowingContinuation { continuation in
            queue.async { continuation.resume(with: Result { try self.executeOnQueue(writes) }) }
        }
    }

    /// The same, entered synchronously from the caller's thread (`GroupCommit.submit(_:alone:)`):
    /// only while group commit's loop is parked, so the queue is idle and the wait is the write's own.
    func executeHere(_ writes: [BillingWrite]) throws -> [Result<BillingWriteResult, BillingStoreError>] {
        if executor.isCurrent { return try executeOnQueue(writes) }
        return try queue.sync { try executeOnQueue(writes) }
    }

    /// Waits for the batch being written, then closes (the checkpointer after the writer, whose log
    /// hook refers to it); later writes fail with `SQLStoreError.closed`.
    func close() async {
        await queue.afterQueued {
            self.connection?.close()
            self.connection = nil
        }
        await checkpointer.close()
    }

    private func executeOnQueue(_ writes: [BillingWrite]) throws -> [Result<BillingWriteResult, BillingStoreError>] {
        guard let database = connection else { throw SQLStoreError.closed }
        try database.execute("BEGIN IMMEDIATE")
        do {
            let results = try Self.execute(BillingBatch(writes), in: database)
            try database.execute("COMMIT")
            return results
        } catch {
            try? database.execute("ROLLBACK")
            throw error
        }
    }

    /// Row by row, each statement prepared once: with no round trips to save, one statement per row
    /// costs no more than a multi-row one and keeps the SQL fixed.
    private static func execute(
        _ batch: BillingBatch, in database: SQLiteDirect
    ) throws -> [Result<BillingWriteResult, BillingStoreError>] {
        var ledger: [String: BillingBatch.LedgerEntry] = [:]
        for requestID in batch.requestIDs {
            let rows = try database.query(
                "SELECT account_id, hold_micros, status FROM ledger WHERE request_id = ?1", [.text(requestID)]
            ) { row in
                BillingBatch.LedgerEntry(accountID: row.text(0) ?? "", hold: row.int(1), running: row.text(2) == "running")
            }
            ledger[requestID] = rows.first
        }
        var accounts: [String: BillingBatch.AccountEntry] = [:]
        for accountID in batch.accountIDs(ledger: ledger) {
            let rows = try database.query(
                "SELECT status, balance_micros, held_micros FROM accounts WHERE id = ?1", [.text(accountID)]
            ) { row in
                BillingBatch.AccountEntry(
                    active: row.text(0) == Account.Status.active.rawValue, balance: row.int(1), held: row.int(2))
            }
            accounts[accountID] = rows.first
        }

        let decisions = try batch.decide(ledger: ledger, accounts: accounts)
        for open in decisions.opened {
            try database.execute(
                """
                INSERT INTO ledger (request_id, account_id, key_id, end_user, model, deployment, instance, hold_micros,
                    status, cost_micros, started_at, http_request_id, api)
                VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'running', 0, ?9, ?10, ?11)
                """,
                [
                    .text(open.requestID), .text(open.accountID), .text(open.keyID), optional(open.endUser),
                    .text(open.model), .text(open.deployment), .text(open.instance), .int(open.hold.micros),
                    .int(open.startedAt), optional(open.httpRequestID), optional(open.api),
                ])
        }
        for entry in decisions.settled {
            let settlement = entry.settlement
            try database.execute(
                """
                UPDATE ledger SET status = ?1, end_reason = ?2, http_status = ?3, prompt_tokens = ?4,
                    completion_tokens = ?5, usage_source = ?6, cost_micros = ?7, queue_ms = ?8, load_ms = ?9,
                    first_token_ms = ?10, generation_ms = ?11, finished_at = ?12, attempts = ?13,
                    deployment = COALESCE(?14, deployment), units = ?16, unit = ?17
                WHERE request_id = ?15
                """,
                [
                    .text(settlement.status.rawValue), .text(settlement.endReason.rawValue),
                    .int(Int64(settlement.httpStatus)), .int(Int64(settlement.promptTokens)),
                    .int(Int64(settlement.completionTokens)), .text(settlement.usageSource.rawValue), .int(entry.capture),
                    .int(settlement.queueMillis), .int(settlement.loadMillis), optional(settlement.firstTokenMillis),
                    .int(settlement.generationMillis), .int(settlement.finishedAt), optional(settlement.attempts),
                    optional(settlement.deployment), .text(settlement.requestID), optional(settlement.units),
                    optional(settlement.unit),
                ])
        }
        for change in decisions.accountChanges {
            try database.execute(
                "UPDATE accounts SET balance_micros = balance_micros - ?1, held_micros = held_micros + ?2 WHERE id = ?3",
                [.int(change.captured), .int(change.heldChange), .text(change.accountID)])
        }
        return decisions.results
    }

    private static func optional(_ value: Int64?) -> SQLiteDirect.Value { value.map { .int($0) } ?? .null }
    private static func optional(_ value: String?) -> SQLiteDirect.Value { value.map { .text($0) } ?? .null }
}
