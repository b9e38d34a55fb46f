import SQLKit
import SwitchyardCore

/// `BillingBatch` over SQLKit, for PostgreSQL (and an in-memory SQLite, which cannot have the hot
/// path's second connection): a fixed number of statements however large the batch — read the
/// ledger rows, then the accounts (locked, in that order), then insert all new rows, write all
/// settlements and apply each account's net change in one statement each.
struct SQLKitBatchExecutor: BillingBatchExecutor {
    let runner: any TransactionRunner

    func execute(_ writes: [BillingWrite]) async throws -> [Result<BillingWriteResult, BillingStoreError>] {
        let backend = runner.backend
        return try await runner.transaction { database in
            try await Self.execute(BillingBatch(writes), backend: backend, in: database)
        }
    }

    /// Inside the caller's transaction; throws if any statement fails.
    static func execute(
        _ batch: BillingBatch, backend: StoreBackend, in database: any SQLDatabase
    ) async throws -> [Result<BillingWriteResult, BillingStoreError>] {
        let lock = backend.forUpdate
        var ledger: [String: BillingBatch.LedgerEntry] = [:]
        for row in try await database.raw(
            """
            SELECT request_id, account_id, hold_micros, status FROM ledger
            WHERE request_id IN (\(binds: batch.requestIDs)) ORDER BY request_id\(unsafeRaw: lock)
            """
        ).all() {
            ledger[try row.value("request_id")] = BillingBatch.LedgerEntry(
                accountID: try row.value("account_id"), hold: try row.value("hold_micros"),
                running: try row.value("status", String.self) == "running")
        }
        var accounts: [String: BillingBatch.AccountEntry] = [:]
        let accountIDs = batch.accountIDs(ledger: ledger)
        // `IN ()` is a syntax error: a batch of settlements of rows no longer running reads none.
        if !accountIDs.isEmpty {
            for row in try await database.raw(
                """
                SELECT id, status, balance_micros, held_micros FROM accounts
                WHERE id IN (\(binds: accountIDs)) ORDER BY id\(unsafeRaw: lock)
                """
            ).all() {
                accounts[try row.value("id")] = BillingBatch.AccountEntry(
                    active: try row.value("status", String.self) == Account.Status.active.rawValue,
                    balance: try row.value("balance_micros"), held: try row.value("held_micros"))
            }
        }

        let decisions = try batch.decide(ledger: ledger, accounts: accounts)
        if !decisions.opened.isEmpty { try await insertRunningRows(decisions.opened, into: database) }
        if !decisions.settled.isEmpty { try await writeSettlements(decisions.settled, into: database) }
        if !decisions.accountChanges.isEmpty { try await applyChanges(decisions.accountChanges, to: database) }
        return decisions.results
    }

    private static func insertRunningRows(_ opened: [LedgerOpen], into database: any SQLDatabase) async throws {
        var values: SQLQueryString = ""
        for (index, open) in opened.enumerated() {
            if index > 0 { values += ", " }
            values += """
                (\(bind: open.requestID), \(bind: open.accountID), \(bind: open.keyID), \(bind: open.endUser),
                \(bind: open.model), \(bind: open.deployment), \(bind: open.instance), \(bind: open.hold.micros),
                'running', 0, \(bind: open.startedAt), \(bind: open.httpRequestID), \(bind: open.api))
                """
        }
        let inserted = try await database.raw(
            """
            INSERT INTO ledger (request_id, account_id, key_id, end_user, model, deployment, instance, hold_micros,
                status, cost_micros, started_at, http_request_id, api)
            VALUES \(values)
            ON CONFLICT (request_id) DO NOTHING
            RETURNING request_id
            """
        ).all()
        // Only another replica can have inserted one of these rows since they were read (PostgreSQL
        // cannot lock a row that does not exist yet). Throwing rolls the batch back; written alone,
        // that write then finds the row and is answered with the conflict.
        guard inserted.count == opened.count else {
            let written = Set(try inserted.map { try $0.value("request_id", String.self) })
            let taken = opened.first { !written.contains($0.requestID) }?.requestID ?? ""
            throw BillingStoreError.conflict("request \(taken) has a ledger row")
        }
    }

    private static func writeSettlements(_ settled: [BillingBatch.Settled], into database: any SQLDatabase) async throws {
        var values: SQLQueryString = ""
        for (index, entry) in settled.enumerated() {
            let settlement = entry.settlement
            if index > 0 { values += ", " }
            values += """
                (\(bind: settlement.requestID), \(bind: settlement.status.rawValue), \(bind: settlement.endReason.rawValue),
                \(bind: settlement.httpStatus), \(bind: settlement.promptTokens), \(bind: settlement.completionTokens),
                \(bind: settlement.usageSource.rawValue), \(bind: entry.capture), \(bind: settlement.queueMillis),
                \(bind: settlement.loadMillis), \(bind: settlement.firstTokenMillis),
                \(bind: settlement.generationMillis), \(bind: settlement.finishedAt), \(bind: settlement.attempts),
                \(bind: settlement.deployment), \(bind: settlement.units), \(bind: settlement.unit))
                """
        }
        // A NULL bind has no type on PostgreSQL, so a column of only NULLs would read as text: the casts
        // say what each column is.
        try await database.raw(
            """
            WITH s (request_id, status, end_reason, http_status, prompt_tokens, completion_tokens, usage_source,
                cost, queue_ms, load_ms, first_token_ms, generation_ms, finished_at, attempts, deployment, units, unit)
            AS (VALUES \(values))
            UPDATE ledger SET status = CAST(s.status AS TEXT), end_reason = CAST(s.end_reason AS TEXT),
                http_status = CAST(s.http_status AS BIGINT), prompt_tokens = CAST(s.prompt_tokens AS BIGINT),
                completion_tokens = CAST(s.completion_tokens AS BIGINT), usage_source = CAST(s.usage_source AS TEXT),
                cost_micros = CAST(s.cost AS BIGINT), queue_ms = CAST(s.queue_ms AS BIGINT),
                load_ms = CAST(s.load_ms AS BIGINT), first_token_ms = CAST(s.first_token_ms AS BIGINT),
                generation_ms = CAST(s.generation_ms AS BIGINT), finished_at = CAST(s.finished_at AS BIGINT),
                attempts = CAST(s.attempts AS TEXT), units = CAST(s.units AS BIGINT), unit = CAST(s.unit AS TEXT),
                deployment = COALESCE(CAST(s.deployment AS TEXT), ledger.deployment)
            FROM s WHERE ledger.request_id = s.request_id
            """
        ).run()
    }

    private static func applyChanges(_ changes: [BillingBatch.AccountChange], to database: any SQLDatabase) async throws {
        var values: SQLQueryString = ""
        for (index, change) in changes.enumerated() {
            if index > 0 { values += ", " }
            values += "(\(bind: change.accountID), \(bind: change.captured), \(bind: change.heldChange))"
        }
        try await database.raw(
            """
            WITH change (account_id, captured, held_change) AS (VALUES \(values))
            UPDATE accounts SET balance_micros = balance_micros - CAST(change.captured AS BIGINT),
                held_micros = held_micros + CAST(change.held_change AS BIGINT)
            FROM change WHERE accounts.id = change.account_id
            """
        ).run()
    }
}
