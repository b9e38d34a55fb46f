import SwitchyardCore
import Testing

@testable import SwitchyardStore

/// The billing rules on their own: what a batch of holds and settlements decides from the rows it
/// read, without a database. The executors only read and write what these decisions say.
@Suite struct BillingBatchTests {
    typealias Ledger = [String: BillingBatch.LedgerEntry]
    typealias Accounts = [String: BillingBatch.AccountEntry]

    static func open(_ request: String, account: String, hold: Int64) -> LedgerOpen {
        LedgerOpen(
            requestID: request, accountID: account, keyID: "k", endUser: nil, model: "qwen", deployment: "local/qwen",
            hold: Money(micros: hold), instance: "gw", startedAt: 1)
    }

    static func settlement(_ request: String, account: String = "a", cost: Int64) -> LedgerSettlement {
        LedgerSettlement(
            requestID: request, accountID: account, hold: .zero, cost: Money(micros: cost), status: .completed,
            endReason: .stop, httpStatus: 200, promptTokens: 1, completionTokens: 2, usageSource: .reported,
            queueMillis: 0, loadMillis: 0, firstTokenMillis: nil, generationMillis: 5, finishedAt: 9)
    }

    static func active(_ balance: Int64, held: Int64 = 0) -> BillingBatch.AccountEntry {
        BillingBatch.AccountEntry(active: true, balance: balance, held: held)
    }

    static func running(_ account: String, hold: Int64) -> BillingBatch.LedgerEntry {
        BillingBatch.LedgerEntry(accountID: account, hold: hold, running: true)
    }

    @Test func holdsAreRefusedForATakenIDAnInactiveOrMissingAccountOrTooLittleMoney() throws {
        let writes: [BillingWrite] = [
            .hold(Self.open("taken", account: "a", hold: 1)),
            .hold(Self.open("r1", account: "suspended", hold: 1)),
            .hold(Self.open("r2", account: "ghost", hold: 1)),
            .hold(Self.open("r3", account: "a", hold: 700)),
            // Sees r3's hold: 300 are left.
            .hold(Self.open("r4", account: "a", hold: 301)),
            .hold(Self.open("r5", account: "a", hold: 300)),
            // The same id twice in one batch: the second finds the first's row.
            .hold(Self.open("r5", account: "a", hold: 0)),
        ]
        let ledger: Ledger = ["taken": BillingBatch.LedgerEntry(accountID: "a", hold: 5, running: false)]
        let accounts: Accounts = [
            "a": Self.active(1_200, held: 200),
            "suspended": BillingBatch.AccountEntry(active: false, balance: 1_000, held: 0),
        ]
        let decisions = try BillingBatch(writes).decide(ledger: ledger, accounts: accounts)
        #expect(decisions.results == [
            .failure(.conflict("request taken has a ledger row")),
            .success(.held(.accountInactive)),
            .success(.held(.accountInactive)),
            .success(.held(.held)),
            .success(.held(.insufficient(available: Money(micros: 300)))),
            .success(.held(.held)),
            .failure(.conflict("request r5 has a ledger row")),
        ])
        #expect(decisions.opened.map(\.requestID) == ["r3", "r5"])
        #expect(decisions.settled.isEmpty)
        #expect(decisions.accountChanges == [.init(accountID: "a", captured: 0, heldChange: 1_000)])
    }

    @Test func settlementsCaptureAtMostWhatTheAccountCanPayOnceEach() throws {
        let writes: [BillingWrite] = [
            .settle(Self.settlement("missing", cost: 10)),
            .settle(Self.settlement("done", cost: 10)),
            // Balance 1000, held 800 of which 300 are this row's: it may take 300 + 200 unheld.
            .settle(Self.settlement("r1", cost: 10_000)),
            .settle(Self.settlement("r1", cost: 10_000)),
            // The other hold: after r1 the balance is 500, all of it r2's.
            .settle(Self.settlement("r2", cost: 600)),
            // A negative cost captures nothing, and still releases the hold.
            .settle(Self.settlement("r3", account: "b", cost: -5)),
        ]
        let ledger: Ledger = [
            "done": BillingBatch.LedgerEntry(accountID: "a", hold: 100, running: false),
            "r1": Self.running("a", hold: 300), "r2": Self.running("a", hold: 500), "r3": Self.running("b", hold: 40),
        ]
        let batch = BillingBatch(writes)
        #expect(batch.requestIDs == ["done", "missing", "r1", "r2", "r3"])
        // Only accounts that a running row or a hold can change are read (and locked).
        #expect(batch.accountIDs(ledger: ledger) == ["a", "b"])
        let decisions = try batch.decide(
            ledger: ledger, accounts: ["a": Self.active(1_000, held: 800), "b": Self.active(0, held: 40)])
        #expect(decisions.results == [
            .success(.settled(nil)), .success(.settled(nil)), .success(.settled(Money(micros: 500))),
            .success(.settled(nil)), .success(.settled(Money(micros: 500))), .success(.settled(.zero)),
        ])
        #expect(decisions.settled.map(\.capture) == [500, 500, 0])
        #expect(decisions.settled.map(\.settlement.requestID) == ["r1", "r2", "r3"])
        #expect(decisions.opened.isEmpty)
        #expect(decisions.accountChanges == [
            .init(accountID: "a", captured: 1_000, heldChange: -800), .init(accountID: "b", captured: 0, heldChange: -40),
        ])
    }

    @Test func aRowOpenedInTheBatchCanBeSettledInIt() throws {
        let writes: [BillingWrite] = [
            .hold(Self.open("r1", account: "a", hold: 400)),
            .settle(Self.settlement("r1", cost: 150)),
            .settle(Self.settlement("r1", cost: 150)),
            // A hold refused writes no row, so its settlement finds none.
            .hold(Self.open("r2", account: "a", hold: 10_000)),
            .settle(Self.settlement("r2", cost: 1)),
        ]
        let batch = BillingBatch(writes)
        #expect(batch.accountIDs(ledger: [:]) == ["a"])
        let decisions = try batch.decide(ledger: [:], accounts: ["a": Self.active(1_000)])
        #expect(decisions.results == [
            .success(.held(.held)), .success(.settled(Money(micros: 150))), .success(.settled(nil)),
            .success(.held(.insufficient(available: Money(micros: 850)))), .success(.settled(nil)),
        ])
        #expect(decisions.opened.map(\.requestID) == ["r1"])
        #expect(decisions.settled == [BillingBatch.Settled(settlement: Self.settlement("r1", cost: 150), capture: 150)])
        // The hold and its release cancel out; only the capture is left.
        #expect(decisions.accountChanges == [.init(accountID: "a", captured: 150, heldChange: 0)])
    }

    @Test func severalAccountsAreKeptApartAndOnlyChangedOnesAreWritten() throws {
        let writes: [BillingWrite] = [
            .hold(Self.open("c1", account: "c", hold: 50)),
            .hold(Self.open("a1", account: "a", hold: 100)),
            .settle(Self.settlement("b0", account: "b", cost: 70)),
            .hold(Self.open("a2", account: "a", hold: 950)),
            // Refused: no change for d.
            .hold(Self.open("d1", account: "d", hold: 1)),
            .settle(Self.settlement("a1", cost: 30)),
        ]
        let ledger: Ledger = ["b0": Self.running("b", hold: 80)]
        let batch = BillingBatch(writes)
        #expect(batch.accountIDs(ledger: ledger) == ["a", "b", "c", "d"])
        let decisions = try batch.decide(ledger: ledger, accounts: [
            "a": Self.active(1_000), "b": Self.active(500, held: 80), "c": Self.active(50), "d": Self.active(0),
        ])
        #expect(decisions.results == [
            .success(.held(.held)), .success(.held(.held)), .success(.settled(Money(micros: 70))),
            .success(.held(.insufficient(available: Money(micros: 900)))),
            .success(.held(.insufficient(available: .zero))), .success(.settled(Money(micros: 30))),
        ])
        #expect(decisions.accountChanges == [
            .init(accountID: "a", captured: 30, heldChange: 0),
            .init(accountID: "b", captured: 70, heldChange: -80),
            .init(accountID: "c", captured: 0, heldChange: 50),
        ])
    }

    @Test func aRunningRowWithoutItsAccountFailsTheBatch() {
        let batch = BillingBatch([.settle(Self.settlement("r1", cost: 1))])
        #expect(throws: SQLStoreError.self) {
            try batch.decide(ledger: ["r1": Self.running("gone", hold: 1)], accounts: [:])
        }
    }
}
