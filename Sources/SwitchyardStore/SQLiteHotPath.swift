import Dispatch
import SwitchyardCore

/// Holds and settlements on SQLite, written on one thread of their own through `SQLiteDirect`: a
/// batch from `GroupCommit` is one hop to that thread and one transaction, and inside it every write
/// runs the same statements as the one-at-a-time SQLKit path (`openHoldAlone`, `settleAlone`), at
/// C speed and with statements parsed once. Everything else (accounts, keys, credits, reads,
/// migrations, recovery) stays on the SQLKit connection; the two share the database file, and
/// SQLite's write lock (`BEGIN IMMEDIATE`, with a busy timeout) keeps their transactions apart.
///
/// `@unchecked Sendable`: `connection` is only touched on `queue`.
final class SQLiteHotPath: @unchecked Sendable {
    private let queue = DispatchQueue(label: "switchyard.billing.sqlite")
    private var connection: SQLiteDirect?

    init(path: String) throws {
        connection = try SQLiteDirect(path: path)
    }

    func apply(_ writes: [BillingWrite]) async -> [Result<BillingWriteResult, any Error>] {
        await withCheckedContinuation { continuation in
            queue.async { continuation.resume(returning: self.applyOnQueue(writes)) }
        }
    }

    /// Waits for the batch being written, then closes; later writes fail with `SQLStoreError.closed`.
    func close() async {
        await withCheckedContinuation { continuation in
            queue.async {
                self.connection?.close()
                self.connection = nil
                continuation.resume()
            }
        }
    }

    /// One transaction for the batch. Should it fail as a whole (the disk, a lock held past the
    /// busy timeout), each write is tried again alone, so each gets its own answer.
    private func applyOnQueue(_ writes: [BillingWrite]) -> [Result<BillingWriteResult, any Error>] {
        guard let database = connection else { return writes.map { _ in .failure(SQLStoreError.closed) } }
        do {
            try database.execute("BEGIN IMMEDIATE")
            do {
                let results = try writes.map { try Self.write($0, in: database) }
                try database.execute("COMMIT")
                return results
            } catch {
                try? database.execute("ROLLBACK")
                throw error
            }
        } catch {
            guard writes.count > 1 else { return [.failure(error)] }
            return writes.flatMap { applyOnQueue([$0]) }
        }
    }

    /// A refusal or conflict is this write's answer; a thrown error fails the batch.
    private static func write(_ write: BillingWrite, in database: SQLiteDirect) throws -> Result<BillingWriteResult, any Error> {
        switch write {
        case .hold(let open): try hold(open, in: database)
        case .settle(let settlement): .success(.settled(try settle(settlement, in: database)))
        }
    }

    private static func hold(_ open: LedgerOpen, in database: SQLiteDirect) throws -> Result<BillingWriteResult, any Error> {
        let existing = try database.query("SELECT 1 FROM ledger WHERE request_id = ?1", [.text(open.requestID)]) { _ in 1 }
        guard existing.isEmpty else {
            return .failure(BillingStoreError.conflict("request \(open.requestID) has a ledger row"))
        }
        try database.execute(
            """
            UPDATE accounts SET held_micros = held_micros + ?1
            WHERE id = ?2 AND status = 'active' AND balance_micros - held_micros >= ?1
            """, [.int(open.hold.micros), .text(open.accountID)])
        if database.changes == 1 {
            try database.execute(
                """
                INSERT INTO ledger (request_id, account_id, key_id, end_user, model, deployment, instance, hold_micros,
                    status, cost_micros, started_at)
                VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'running', 0, ?9)
                """,
                [
                    .text(open.requestID), .text(open.accountID), .text(open.keyID), open.endUser.map { .text($0) } ?? .null,
                    .text(open.model), .text(open.deployment), .text(open.instance), .int(open.hold.micros),
                    .int(open.startedAt),
                ])
            return .success(.held(.held))
        }
        let accounts = try database.query(
            "SELECT status, balance_micros, held_micros FROM accounts WHERE id = ?1", [.text(open.accountID)]
        ) { row in (status: row.text(0), available: row.int(1) - row.int(2)) }
        guard let account = accounts.first, account.status == Account.Status.active.rawValue else {
            return .success(.held(.accountInactive))
        }
        return .success(.held(.insufficient(available: Money(micros: account.available))))
    }

    private static func settle(_ settlement: LedgerSettlement, in database: SQLiteDirect) throws -> Money? {
        let running = try database.query(
            "SELECT account_id, hold_micros FROM ledger WHERE request_id = ?1 AND status = 'running'",
            [.text(settlement.requestID)]
        ) { row in (accountID: row.text(0) ?? "", hold: row.int(1)) }
        guard let row = running.first else { return nil }
        let accounts = try database.query(
            "SELECT balance_micros, held_micros FROM accounts WHERE id = ?1", [.text(row.accountID)]
        ) { account in (balance: account.int(0), held: account.int(1)) }
        guard let account = accounts.first else { throw SQLStoreError.corruptValue("ledger row without account") }
        let capture = SQLBillingStore.capture(
            cost: settlement.cost.micros, balance: account.balance, held: account.held, hold: row.hold)
        try database.execute(
            "UPDATE accounts SET balance_micros = balance_micros - ?1, held_micros = held_micros - ?2 WHERE id = ?3",
            [.int(capture), .int(row.hold), .text(row.accountID)])
        func optional(_ value: Int64?) -> SQLiteDirect.Value { value.map { .int($0) } ?? .null }
        func optional(_ value: String?) -> SQLiteDirect.Value { value.map { .text($0) } ?? .null }
        try database.execute(
            """
            UPDATE ledger SET status = ?1, end_reason = ?2, http_status = ?3, prompt_tokens = ?4,
                completion_tokens = ?5, usage_source = ?6, cost_micros = ?7, queue_ms = ?8, load_ms = ?9,
                first_token_ms = ?10, generation_ms = ?11, finished_at = ?12, attempts = ?13,
                deployment = COALESCE(?14, deployment)
            WHERE request_id = ?15
            """,
            [
                .text(settlement.status.rawValue), .text(settlement.endReason.rawValue), .int(Int64(settlement.httpStatus)),
                .int(Int64(settlement.promptTokens)), .int(Int64(settlement.completionTokens)),
                .text(settlement.usageSource.rawValue), .int(capture), .int(settlement.queueMillis),
                .int(settlement.loadMillis), optional(settlement.firstTokenMillis), .int(settlement.generationMillis),
                .int(settlement.finishedAt), optional(settlement.attempts), optional(settlement.deployment),
                .text(settlement.requestID),
            ])
        return Money(micros: capture)
    }
}
