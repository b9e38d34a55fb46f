import SwitchyardCore

/// One of the two billing writes every request makes.
enum BillingWrite: Sendable, Equatable {
    case hold(LedgerOpen)
    case settle(LedgerSettlement)

    var requestID: String {
        switch self {
        case .hold(let open): open.requestID
        case .settle(let settlement): settlement.requestID
        }
    }
}

/// What a `BillingWrite` came to.
enum BillingWriteResult: Sendable, Equatable {
    case held(HoldOutcome)
    case settled(Money?)
}

/// The rules of holds and settlements, written once. A batch of writes is decided in memory, in
/// arrival order, from the ledger rows and accounts it names as they were read (and, on PostgreSQL,
/// locked) inside the transaction that will write the result — which is why deciding them together
/// comes to exactly what one transaction per write would have. The executors
/// (`SQLKitBatchExecutor`, `SQLiteHotPath`) only read what `requestIDs` and `accountIDs(ledger:)`
/// name, call `decide`, and write what it returns; a single write is a batch of one.
struct BillingBatch: Sendable {
    /// A ledger row as read.
    struct LedgerEntry: Sendable, Equatable {
        var accountID: String
        var hold: Int64
        var running: Bool
    }

    /// An account as read.
    struct AccountEntry: Sendable, Equatable {
        var active: Bool
        var balance: Int64
        var held: Int64
    }

    struct Settled: Sendable, Equatable {
        var settlement: LedgerSettlement
        /// What it captures; also the row's `cost_micros`.
        var capture: Int64
    }

    /// An account's net change over the batch: `balance -= captured`, `held += heldChange`.
    struct AccountChange: Sendable, Equatable {
        var accountID: String
        var captured: Int64
        var heldChange: Int64
    }

    struct Decisions: Sendable, Equatable {
        /// One per write, in order. A conflict is that write's answer, not the batch's failure.
        var results: [Result<BillingWriteResult, BillingStoreError>]
        /// New `running` rows, to be inserted before `settled` is written (a row may be settled in
        /// the batch that opens it).
        var opened: [LedgerOpen]
        var settled: [Settled]
        /// By account id, only accounts that change.
        var accountChanges: [AccountChange]
    }

    let writes: [BillingWrite]

    init(_ writes: [BillingWrite]) {
        self.writes = writes
    }

    /// The ledger rows to read, in the order they are locked: ledger rows by request id, then
    /// accounts by id, everywhere, so two transactions can never wait on each other in a cycle.
    var requestIDs: [String] {
        Array(Set(writes.map(\.requestID))).sorted()
    }

    /// The accounts to read (after the ledger rows), in lock order: those the holds name and those
    /// of running rows that may be settled.
    func accountIDs(ledger: [String: LedgerEntry]) -> [String] {
        var ids = Set<String>()
        for write in writes {
            switch write {
            case .hold(let open): ids.insert(open.accountID)
            case .settle(let settlement):
                if let entry = ledger[settlement.requestID], entry.running { ids.insert(entry.accountID) }
            }
        }
        return ids.sorted()
    }

    /// `ledger` and `accounts` hold the rows that exist of those named by `requestIDs` and
    /// `accountIDs(ledger:)`. Throws only on data no write could have produced (a ledger row whose
    /// account is missing), which fails the batch.
    func decide(ledger: [String: LedgerEntry], accounts: [String: AccountEntry]) throws -> Decisions {
        var ledger = ledger
        var accounts = accounts
        var changes: [String: AccountChange] = [:]
        var decisions = Decisions(results: [], opened: [], settled: [], accountChanges: [])
        decisions.results.reserveCapacity(writes.count)
        for write in writes {
            switch write {
            case .hold(let open):
                guard ledger[open.requestID] == nil else {
                    decisions.results.append(.failure(.conflict("request \(open.requestID) has a ledger row")))
                    continue
                }
                // A missing account is refused like a suspended one: nothing to hold against.
                guard var account = accounts[open.accountID], account.active else {
                    decisions.results.append(.success(.held(.accountInactive)))
                    continue
                }
                let available = account.balance - account.held
                guard available >= open.hold.micros else {
                    decisions.results.append(.success(.held(.insufficient(available: Money(micros: available)))))
                    continue
                }
                account.held += open.hold.micros
                accounts[open.accountID] = account
                changes[open.accountID, default: AccountChange(accountID: open.accountID, captured: 0, heldChange: 0)]
                    .heldChange += open.hold.micros
                ledger[open.requestID] = LedgerEntry(accountID: open.accountID, hold: open.hold.micros, running: true)
                decisions.opened.append(open)
                decisions.results.append(.success(.held(.held)))
            case .settle(let settlement):
                // Exactly once: a row that is missing or no longer running is left alone.
                guard var entry = ledger[settlement.requestID], entry.running else {
                    decisions.results.append(.success(.settled(nil)))
                    continue
                }
                guard var account = accounts[entry.accountID] else {
                    throw SQLStoreError.corruptValue("ledger row without account")
                }
                let capture = Self.capture(
                    cost: settlement.cost.micros, balance: account.balance, held: account.held, hold: entry.hold)
                account.balance -= capture
                account.held -= entry.hold
                accounts[entry.accountID] = account
                changes[entry.accountID, default: AccountChange(accountID: entry.accountID, captured: 0, heldChange: 0)]
                    .captured += capture
                changes[entry.accountID]?.heldChange -= entry.hold
                entry.running = false
                ledger[settlement.requestID] = entry
                decisions.settled.append(Settled(settlement: settlement, capture: capture))
                decisions.results.append(.success(.settled(Money(micros: capture))))
            }
        }
        decisions.accountChanges = changes.values
            .filter { $0.captured != 0 || $0.heldChange != 0 }
            .sorted { $0.accountID < $1.accountID }
        return decisions
    }

    /// What a settlement captures: the cost, but at most what the account can pay — its balance less
    /// the holds of its other requests — so a balance never goes below zero.
    static func capture(cost: Int64, balance: Int64, held: Int64, hold: Int64) -> Int64 {
        max(0, min(cost, balance - (held - hold)))
    }
}
