/// Persistence of accounts, keys, credits, holds and the ledger. Every method is one atomic unit:
/// adapters run each in a single transaction, so several gateway replicas can share one database.
public protocol BillingStore: Sendable {
    /// Creates or upgrades the schema (versioned migrations; safe to run at every start).
    func migrate() async throws

    // MARK: accounts
    /// Throws `BillingStoreError.conflict` when the id is taken.
    func createAccount(_ account: Account) async throws
    func account(id: String) async throws -> Account?
    /// Ordered by id; `after` is the last id of the previous page.
    func accounts(limit: Int, after: String?) async throws -> [Account]
    /// The account after the change, or nil when it does not exist.
    func updateAccount(id: String, _ patch: AccountPatch) async throws -> Account?

    // MARK: keys
    /// Throws `BillingStoreError.notFound` when the account does not exist.
    func createKey(_ key: APIKey) async throws
    /// The key with this hash and its account, revoked or expired ones included (the caller decides).
    func key(hash: [UInt8]) async throws -> (key: APIKey, account: Account)?
    func keys(accountID: String) async throws -> [APIKey]
    /// The key after the change, or nil when it does not exist. A revoked key can be changed, and
    /// stays revoked.
    func updateKey(id: String, _ patch: KeyPatch) async throws -> APIKey?
    /// Marks the key revoked at `at` (unix seconds); false when there is no such key.
    func revokeKey(id: String, at: Int64) async throws -> Bool

    // MARK: credits
    /// Adds `amount` (negative to adjust down) to the balance once per idempotency key.
    func addCredit(accountID: String, amount: Money, reason: String, idempotencyKey: String?, at: Int64)
        async throws -> CreditOutcome

    // MARK: holds and the ledger
    /// Atomically reserves `hold` against balance − held (only for an active account) and writes the
    /// request's ledger row with status `running`.
    func openHold(_ open: LedgerOpen) async throws -> HoldOutcome
    /// Completes the running ledger row, captures the cost (capped at what the account can pay) and
    /// releases the hold, atomically. Exactly once: a row that is no longer running is left alone and
    /// nil is returned; otherwise the amount captured.
    func settle(_ settlement: LedgerSettlement) async throws -> Money?
    /// `settle` for code that cannot await (a `deinit`): hands the settlement over without waiting or
    /// spawning a task; `completion` runs once with what `settle` would have returned or thrown.
    /// Settlements handed over before the store shuts down are written; later ones fail.
    func settleEventually(_ settlement: LedgerSettlement, completion: @escaping @Sendable (Result<Money?, any Error>) -> Void)
    /// Releases the holds of this instance's rows still `running` (left by a crash), marking them
    /// `interrupted` with no charge. Returns how many.
    func recoverInterrupted(instance: String, at: Int64) async throws -> Int
    /// Ledger rows newest first; `from`/`to` are unix milliseconds (inclusive, exclusive).
    func ledger(accountID: String?, from: Int64?, to: Int64?, limit: Int, cursor: String?) async throws -> LedgerPage

    // MARK: settings
    func setting(_ name: String) async throws -> String?
    func setSetting(_ name: String, _ value: String) async throws
}

public enum BillingStoreError: Error, Sendable, Equatable {
    case conflict(String)
    case notFound(String)
    case invalidCursor
    /// The database cannot be reached (or did not answer in time): nothing was decided. The caller
    /// gets 503 `database_unavailable`, never a guess.
    case unavailable
}
