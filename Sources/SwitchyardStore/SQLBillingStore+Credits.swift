import Foundation
import SQLKit
import SwitchyardCore

extension SQLBillingStore {
    /// The idempotency key is claimed by inserting the credit row under its UNIQUE constraint, so of
    /// racing calls with one key exactly one inserts: the others find the conflict (on Postgres
    /// after waiting for the winner to commit) and change nothing.
    public func addCredit(
        accountID: String, amount: Money, reason: String, idempotencyKey: String?, at: Int64
    ) async throws -> CreditOutcome {
        let creditID = UUID().uuidString.lowercased()
        let accountColumns = Columns.list(Columns.account)
        return try await runner.transaction { database in
            let exists = try await database.raw("SELECT id FROM accounts WHERE id = \(bind: accountID)").all()
            guard !exists.isEmpty else { return .accountNotFound }
            let inserted = try await database.raw(
                """
                INSERT INTO credits (id, account_id, amount_micros, reason, idempotency_key, created_at)
                VALUES (\(bind: creditID), \(bind: accountID), \(bind: amount.micros), \(bind: reason),
                    \(bind: idempotencyKey), \(bind: at))
                ON CONFLICT DO NOTHING
                RETURNING id
                """
            ).all()
            guard !inserted.isEmpty else {
                let current = try await database.raw(
                    "SELECT \(unsafeRaw: accountColumns) FROM accounts WHERE id = \(bind: accountID)"
                ).all()
                guard let account = try current.first?.account() else { return .accountNotFound }
                return .duplicate(account)
            }
            let updated = try await database.raw(
                """
                UPDATE accounts SET balance_micros = balance_micros + \(bind: amount.micros) WHERE id = \(bind: accountID)
                RETURNING \(unsafeRaw: accountColumns)
                """
            ).all()
            guard let account = try updated.first?.account() else { throw SQLStoreError.corruptValue("credit without account") }
            return .applied(account)
        }
    }
}
