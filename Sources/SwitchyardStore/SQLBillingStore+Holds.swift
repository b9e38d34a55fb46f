import SQLKit
import SwitchyardCore

extension SQLBillingStore {
    /// Holds and settlements go through group commit (`GroupCommit`): alone when the gateway is
    /// quiet, in batches under load.
    public func openHold(_ open: LedgerOpen) async throws -> HoldOutcome {
        guard open.hold.micros >= 0 else { throw SQLStoreError.invalidArgument("a hold cannot be negative") }
        guard case .held(let outcome) = try await commits.submit(.hold(open)) else {
            throw SQLStoreError.corruptValue("a hold answered as a settlement")
        }
        return outcome
    }

    /// The hold released and the amount captured are the ones of the stored row (taken when it was
    /// opened); the settlement's `accountID` and `hold` repeat them and are not trusted over it.
    public func settle(_ settlement: LedgerSettlement) async throws -> Money? {
        guard case .settled(let capture) = try await commits.submit(.settle(settlement)) else {
            throw SQLStoreError.corruptValue("a settlement answered as a hold")
        }
        return capture
    }

    /// The reservation is a single conditional UPDATE: the database checks and changes the balance
    /// in one step under the row's lock, so concurrent requests can never over-commit an account.
    static func openHoldAlone(_ open: LedgerOpen, runner: any TransactionRunner) async throws -> HoldOutcome {
        try await runner.transaction { database in
            // On Postgres the follow-up read may see a credit committed after the UPDATE failed; the
            // UPDATE is then worth another try rather than reporting enough money as insufficient.
            var available: Int64 = 0
            for _ in 0..<3 {
                let reserved = try await database.raw(
                    """
                    UPDATE accounts SET held_micros = held_micros + \(bind: open.hold.micros)
                    WHERE id = \(bind: open.accountID) AND status = 'active'
                        AND balance_micros - held_micros >= \(bind: open.hold.micros)
                    RETURNING id
                    """
                ).all()
                if !reserved.isEmpty {
                    try await Self.insertRunningRow(open, into: database)
                    return .held
                }
                let current = try await database.raw(
                    "SELECT status, balance_micros, held_micros FROM accounts WHERE id = \(bind: open.accountID)"
                ).all()
                guard let row = current.first, try row.value("status", String.self) == Account.Status.active.rawValue else {
                    return .accountInactive
                }
                available = try row.value("balance_micros", Int64.self) - row.value("held_micros", Int64.self)
                if available < open.hold.micros { break }
            }
            return .insufficient(available: Money(micros: available))
        }
    }

    private static func insertRunningRow(_ open: LedgerOpen, into database: any SQLDatabase) async throws {
        let inserted = try await database.raw(
            """
            INSERT INTO ledger (request_id, account_id, key_id, end_user, model, deployment, instance, hold_micros,
                status, cost_micros, started_at)
            VALUES (\(bind: open.requestID), \(bind: open.accountID), \(bind: open.keyID), \(bind: open.endUser),
                \(bind: open.model), \(bind: open.deployment), \(bind: open.instance), \(bind: open.hold.micros),
                'running', 0, \(bind: open.startedAt))
            ON CONFLICT (request_id) DO NOTHING
            RETURNING request_id
            """
        ).all()
        // Throwing rolls the reservation back with the rest of the transaction.
        guard !inserted.isEmpty else { throw BillingStoreError.conflict("request \(open.requestID) has a ledger row") }
    }

    /// What a settlement captures: the cost, but at most what the account can pay — its balance less
    /// the holds of its other requests — so a balance never goes below zero.
    static func capture(cost: Int64, balance: Int64, held: Int64, hold: Int64) -> Int64 {
        max(0, min(cost, balance - (held - hold)))
    }

    static func settleAlone(_ settlement: LedgerSettlement, runner: any TransactionRunner) async throws -> Money? {
        let lock = runner.backend.forUpdate
        return try await runner.transaction { database in
            // Locking the row makes a concurrent second settle wait, then find it no longer running.
            let running = try await database.raw(
                """
                SELECT account_id, hold_micros FROM ledger
                WHERE request_id = \(bind: settlement.requestID) AND status = 'running'\(unsafeRaw: lock)
                """
            ).all()
            guard let row = running.first else { return nil }
            let accountID = try row.value("account_id", String.self)
            let hold = try row.value("hold_micros", Int64.self)
            let accounts = try await database.raw(
                "SELECT balance_micros, held_micros FROM accounts WHERE id = \(bind: accountID)\(unsafeRaw: lock)"
            ).all()
            guard let account = accounts.first else { throw SQLStoreError.corruptValue("ledger row without account") }
            let capture = capture(
                cost: settlement.cost.micros, balance: try account.value("balance_micros"),
                held: try account.value("held_micros"), hold: hold)
            try await database.raw(
                """
                UPDATE accounts SET balance_micros = balance_micros - \(bind: capture), held_micros = held_micros - \(bind: hold)
                WHERE id = \(bind: accountID)
                """
            ).run()
            try await database.raw(
                """
                UPDATE ledger SET status = \(bind: settlement.status.rawValue), end_reason = \(bind: settlement.endReason.rawValue),
                    http_status = \(bind: settlement.httpStatus), prompt_tokens = \(bind: settlement.promptTokens),
                    completion_tokens = \(bind: settlement.completionTokens),
                    usage_source = \(bind: settlement.usageSource.rawValue), cost_micros = \(bind: capture),
                    queue_ms = \(bind: settlement.queueMillis), load_ms = \(bind: settlement.loadMillis),
                    first_token_ms = \(bind: settlement.firstTokenMillis),
                    generation_ms = \(bind: settlement.generationMillis), finished_at = \(bind: settlement.finishedAt),
                    attempts = \(bind: settlement.attempts),
                    deployment = COALESCE(\(bind: settlement.deployment), deployment)
                WHERE request_id = \(bind: settlement.requestID)
                """
            ).run()
            return Money(micros: capture)
        }
    }

    /// `at` is unix milliseconds, like the ledger's other times.
    public func recoverInterrupted(instance: String, at: Int64) async throws -> Int {
        try await runner.transaction { database in
            let released = try await database.raw(
                """
                UPDATE ledger SET status = 'interrupted', end_reason = 'gateway_restart', cost_micros = 0,
                    finished_at = \(bind: at)
                WHERE instance = \(bind: instance) AND status = 'running'
                RETURNING account_id, hold_micros
                """
            ).all()
            var holds: [String: Int64] = [:]
            for row in released {
                holds[try row.value("account_id", String.self), default: 0] += try row.value("hold_micros", Int64.self)
            }
            // In a fixed order, so two recoveries touching the same accounts cannot deadlock.
            for (accountID, hold) in holds.sorted(by: { $0.key < $1.key }) {
                try await database.raw(
                    "UPDATE accounts SET held_micros = held_micros - \(bind: hold) WHERE id = \(bind: accountID)"
                ).run()
            }
            return released.count
        }
    }
}
