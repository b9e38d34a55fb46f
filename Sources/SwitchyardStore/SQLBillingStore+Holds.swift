import SQLKit
import SwitchyardCore
import Synchronization

extension SQLBillingStore {
    /// Holds and settlements go through group commit (`GroupCommit`): alone when the gateway is
    /// quiet, in batches under load, decided by `BillingBatch` either way.
    public func openHold(_ open: LedgerOpen) async throws -> HoldOutcome {
        guard open.hold.micros >= 0 else { throw SQLStoreError.invalidArgument("a hold cannot be negative") }
        let others = openHolds.add(1, ordering: .relaxed).oldValue
        let outcome: HoldOutcome
        do {
            guard case .held(let written) = try await commits.submit(.hold(open), alone: others == 0) else {
                throw SQLStoreError.corruptValue("a hold answered as a settlement")
            }
            outcome = written
        } catch {
            holdEnded()
            throw error
        }
        if outcome != .held { holdEnded() }
        return outcome
    }

    /// One fewer hold open (never below zero: a hold from an earlier process may settle here).
    private func holdEnded() {
        var current = openHolds.load(ordering: .relaxed)
        while current > 0 {
            let (exchanged, original) = openHolds.compareExchange(
                expected: current, desired: current - 1, ordering: .relaxed)
            if exchanged { return }
            current = original
        }
    }

    /// The hold released and the amount captured are the ones of the stored row (taken when it was
    /// opened); the settlement's `accountID` and `hold` repeat them and are not trusted over it.
    public func settle(_ settlement: LedgerSettlement) async throws -> Money? {
        defer { holdEnded() }
        // Alone when the only open hold is this request's own.
        return try Self.capture(of: try await commits.submit(.settle(settlement), alone: openHolds.load(ordering: .relaxed) <= 1))
    }

    /// Hands a settlement to the ledger writer without waiting: for code that cannot await (a
    /// `deinit`). `completion` runs once, when the settlement is written (or failed), on the writer's
    /// task; after the writer stopped it runs at once with `SQLStoreError.closed`.
    public func settleEventually(
        _ settlement: LedgerSettlement, completion: @escaping @Sendable (Result<Money?, any Error>) -> Void
    ) {
        commits.enqueue(.settle(settlement)) { [self] result in
            holdEnded()
            completion(result.flatMap { written in Result { try Self.capture(of: written) } })
        }
    }

    private static func capture(of written: BillingWriteResult) throws -> Money? {
        guard case .settled(let capture) = written else {
            throw SQLStoreError.corruptValue("a settlement answered as a hold")
        }
        return capture
    }

    /// `at` is unix milliseconds, like the ledger's other times.
    public func recoverInterrupted(instance: String, at: Int64) async throws -> Int {
        try await runner.transaction { database in
            try await Self.releaseRunning(instance: instance, reason: "gateway_restart", at: at, in: database)
        }
    }

    /// Marks the instance's running rows `interrupted` (no charge) and releases their holds, inside
    /// the caller's transaction: at a replica's own restart, or by a survivor when it died.
    static func releaseRunning(instance: String, reason: String, at: Int64, in database: any SQLDatabase) async throws -> Int {
        let released = try await database.raw(
            """
            UPDATE ledger SET status = 'interrupted', end_reason = \(bind: reason), cost_micros = 0,
                finished_at = \(bind: at)
            WHERE instance = \(bind: instance) AND status = 'running'
                AND request_id NOT IN (SELECT request_id FROM tasks WHERE finished_at IS NULL)
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
