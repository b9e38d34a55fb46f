import Logging
import SQLKit
import SwitchyardCore

/// Many holds and settlements in one transaction with a fixed number of statements: read the ledger
/// rows and accounts involved (locked), decide every write in order in memory — exactly as the
/// one-at-a-time SQL would have, one after the other — then write all ledger rows, all settlements
/// and the net change of each account in one statement each.
extension SQLBillingStore {
    /// Runs `writes` as one batch. A single write takes the one-at-a-time path (fewer statements);
    /// if the batch fails as a whole, each write is retried alone so one bad write cannot fail the
    /// others, and each gets its own error.
    static func apply(
        _ writes: [BillingWrite], runner: any TransactionRunner, logger: Logger
    ) async -> [Result<BillingWriteResult, any Error>] {
        if writes.count > 1 {
            let backend = runner.backend
            do {
                return try await runner.transaction { database in
                    try await Self.applyBatch(writes, backend: backend, in: database)
                }
            } catch {
                logger.debug("a billing batch failed; writing its parts one by one", metadata: [
                    "batch.size": "\(writes.count)", "error": "\(String(reflecting: error))",
                ])
            }
        }
        var results: [Result<BillingWriteResult, any Error>] = []
        results.reserveCapacity(writes.count)
        for write in writes {
            do {
                switch write {
                case .hold(let open):
                    results.append(.success(.held(try await openHoldAlone(open, runner: runner))))
                case .settle(let settlement):
                    results.append(.success(.settled(try await settleAlone(settlement, runner: runner))))
                }
            } catch {
                results.append(.failure(error))
            }
        }
        return results
    }

    private struct LedgerEntry {
        var accountID: String
        var hold: Int64
        var running: Bool
    }

    private struct AccountEntry {
        var active: Bool
        var balance: Int64
        var held: Int64
        var capturedTotal: Int64 = 0
        var heldChange: Int64 = 0
    }

    /// The batch itself, inside the caller's transaction; throws if any statement fails.
    static func applyBatch(
        _ writes: [BillingWrite], backend: StoreBackend, in database: any SQLDatabase
    ) async throws -> [Result<BillingWriteResult, any Error>] {
        let lock = backend.forUpdate
        // Locks in a fixed order (ledger rows, then accounts by id), like the one-at-a-time paths.
        let requestIDs = Array(Set(writes.map(\.requestID))).sorted()
        var ledger: [String: LedgerEntry] = [:]
        for row in try await database.raw(
            """
            SELECT request_id, account_id, hold_micros, status FROM ledger
            WHERE request_id IN (\(binds: requestIDs)) ORDER BY request_id\(unsafeRaw: lock)
            """
        ).all() {
            ledger[try row.value("request_id")] = LedgerEntry(
                accountID: try row.value("account_id"), hold: try row.value("hold_micros"),
                running: try row.value("status", String.self) == "running")
        }
        var accountIDs = Set(ledger.values.map(\.accountID))
        for case .hold(let open) in writes { accountIDs.insert(open.accountID) }
        var accounts: [String: AccountEntry] = [:]
        for row in try await database.raw(
            """
            SELECT id, status, balance_micros, held_micros FROM accounts
            WHERE id IN (\(binds: accountIDs.sorted())) ORDER BY id\(unsafeRaw: lock)
            """
        ).all() {
            accounts[try row.value("id")] = AccountEntry(
                active: try row.value("status", String.self) == Account.Status.active.rawValue,
                balance: try row.value("balance_micros"), held: try row.value("held_micros"))
        }

        var results: [Result<BillingWriteResult, any Error>] = []
        var opened: [LedgerOpen] = []
        var settled: [(settlement: LedgerSettlement, capture: Int64)] = []
        for write in writes {
            switch write {
            case .hold(let open):
                guard ledger[open.requestID] == nil else {
                    results.append(.failure(BillingStoreError.conflict("request \(open.requestID) has a ledger row")))
                    continue
                }
                guard var account = accounts[open.accountID], account.active else {
                    results.append(.success(.held(.accountInactive)))
                    continue
                }
                let available = account.balance - account.held
                guard available >= open.hold.micros else {
                    results.append(.success(.held(.insufficient(available: Money(micros: available)))))
                    continue
                }
                account.held += open.hold.micros
                account.heldChange += open.hold.micros
                accounts[open.accountID] = account
                ledger[open.requestID] = LedgerEntry(accountID: open.accountID, hold: open.hold.micros, running: true)
                opened.append(open)
                results.append(.success(.held(.held)))
            case .settle(let settlement):
                guard var entry = ledger[settlement.requestID], entry.running else {
                    results.append(.success(.settled(nil)))
                    continue
                }
                guard var account = accounts[entry.accountID] else {
                    throw SQLStoreError.corruptValue("ledger row without account")
                }
                let capture = SQLBillingStore.capture(
                    cost: settlement.cost.micros, balance: account.balance, held: account.held, hold: entry.hold)
                account.balance -= capture
                account.held -= entry.hold
                account.capturedTotal += capture
                account.heldChange -= entry.hold
                accounts[entry.accountID] = account
                entry.running = false
                ledger[settlement.requestID] = entry
                settled.append((settlement, capture))
                results.append(.success(.settled(Money(micros: capture))))
            }
        }

        if !opened.isEmpty { try await insertRunningRows(opened, into: database) }
        if !settled.isEmpty { try await writeSettlements(settled, into: database) }
        let changed = accounts.filter { $0.value.capturedTotal != 0 || $0.value.heldChange != 0 }
        if !changed.isEmpty {
            var values: SQLQueryString = ""
            for (index, (id, account)) in changed.sorted(by: { $0.key < $1.key }).enumerated() {
                if index > 0 { values += ", " }
                values += "(\(bind: id), \(bind: account.capturedTotal), \(bind: account.heldChange))"
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
        return results
    }

    private static func insertRunningRows(_ opened: [LedgerOpen], into database: any SQLDatabase) async throws {
        var values: SQLQueryString = ""
        for (index, open) in opened.enumerated() {
            if index > 0 { values += ", " }
            values += """
                (\(bind: open.requestID), \(bind: open.accountID), \(bind: open.keyID), \(bind: open.endUser),
                \(bind: open.model), \(bind: open.deployment), \(bind: open.instance), \(bind: open.hold.micros),
                'running', 0, \(bind: open.startedAt))
                """
        }
        try await database.raw(
            """
            INSERT INTO ledger (request_id, account_id, key_id, end_user, model, deployment, instance, hold_micros,
                status, cost_micros, started_at)
            VALUES \(values)
            """
        ).run()
    }

    private static func writeSettlements(
        _ settled: [(settlement: LedgerSettlement, capture: Int64)], into database: any SQLDatabase
    ) async throws {
        var values: SQLQueryString = ""
        for (index, (settlement, capture)) in settled.enumerated() {
            if index > 0 { values += ", " }
            values += """
                (\(bind: settlement.requestID), \(bind: settlement.status.rawValue), \(bind: settlement.endReason.rawValue),
                \(bind: settlement.httpStatus), \(bind: settlement.promptTokens), \(bind: settlement.completionTokens),
                \(bind: settlement.usageSource.rawValue), \(bind: capture), \(bind: settlement.queueMillis),
                \(bind: settlement.loadMillis), \(bind: settlement.firstTokenMillis),
                \(bind: settlement.generationMillis), \(bind: settlement.finishedAt), \(bind: settlement.attempts),
                \(bind: settlement.deployment))
                """
        }
        // A NULL bind has no type on PostgreSQL, so a column of only NULLs would read as text: the casts
        // say what each column is.
        try await database.raw(
            """
            WITH s (request_id, status, end_reason, http_status, prompt_tokens, completion_tokens, usage_source,
                cost, queue_ms, load_ms, first_token_ms, generation_ms, finished_at, attempts, deployment)
            AS (VALUES \(values))
            UPDATE ledger SET status = CAST(s.status AS TEXT), end_reason = CAST(s.end_reason AS TEXT),
                http_status = CAST(s.http_status AS BIGINT), prompt_tokens = CAST(s.prompt_tokens AS BIGINT),
                completion_tokens = CAST(s.completion_tokens AS BIGINT), usage_source = CAST(s.usage_source AS TEXT),
                cost_micros = CAST(s.cost AS BIGINT), queue_ms = CAST(s.queue_ms AS BIGINT),
                load_ms = CAST(s.load_ms AS BIGINT), first_token_ms = CAST(s.first_token_ms AS BIGINT),
                generation_ms = CAST(s.generation_ms AS BIGINT), finished_at = CAST(s.finished_at AS BIGINT),
                attempts = CAST(s.attempts AS TEXT),
                deployment = COALESCE(CAST(s.deployment AS TEXT), ledger.deployment)
            FROM s WHERE ledger.request_id = s.request_id
            """
        ).run()
    }
}
