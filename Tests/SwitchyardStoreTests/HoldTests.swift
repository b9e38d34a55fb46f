import SwitchyardCore
import SwitchyardStore
import Testing

extension SQLBillingStoreTests {
    @Test(arguments: Backend.available)
    func holdsNeedAnActiveAccountWithEnoughAvailable(_ backend: Backend) async throws {
        try await withStore(backend) { store, fixture in
            try await store.createAccount(fixture.account("a", balance: 1_000))
            try await store.createAccount(fixture.account("s", balance: 1_000, status: .suspended))

            #expect(try await store.openHold(fixture.open("r1", account: "a", hold: 600)) == .held)
            #expect(try await store.openHold(fixture.open("r2", account: "a", hold: 500)) == .insufficient(available: Money(micros: 400)))
            #expect(try await store.openHold(fixture.open("r3", account: "a", hold: 400)) == .held)
            #expect(try await store.openHold(fixture.open("r4", account: "s", hold: 1)) == .accountInactive)
            #expect(try await store.openHold(fixture.open("r5", account: "ghost", hold: 1)) == .accountInactive)

            let account = try #require(try await store.account(id: fixture.id("a")))
            #expect(account.balance == Money(micros: 1_000))
            #expect(account.held == Money(micros: 1_000))
            // Only the granted holds wrote ledger rows, running and free so far.
            let rows = try await store.ledger(accountID: nil, from: fixture.epoch, to: fixture.epoch + 1, limit: 10, cursor: nil).rows
            #expect(Set(rows.map(\.open.requestID)) == [fixture.id("r1"), fixture.id("r3")])
            #expect(rows.allSatisfy { $0.status == "running" && $0.cost == .zero && $0.finishedAt == nil })
            #expect(rows.first { $0.open.requestID == fixture.id("r1") }?.open == fixture.open("r1", account: "a", hold: 600))
            // A request id is written once; the second hold is undone with its failed transaction.
            await #expect(throws: BillingStoreError.self) {
                try await store.openHold(fixture.open("r1", account: "a", hold: 0))
            }
        }
    }

    @Test(arguments: Backend.available)
    func settleCapturesTheCostOnceAndReleasesTheHold(_ backend: Backend) async throws {
        try await withStore(backend) { store, fixture in
            try await store.createAccount(fixture.account("a", balance: 10_000))
            #expect(try await store.openHold(fixture.open("r1", account: "a", hold: 3_000)) == .held)
            #expect(try await store.openHold(fixture.open("r2", account: "a", hold: 2_000)) == .held)

            let settlement = fixture.settlement("r1", account: "a", hold: 3_000, cost: 1_234)
            #expect(try await store.settle(settlement) == Money(micros: 1_234))
            var account = try #require(try await store.account(id: fixture.id("a")))
            #expect(account.balance == Money(micros: 8_766))
            #expect(account.held == Money(micros: 2_000))

            // Exactly once: a second settle changes nothing.
            #expect(try await store.settle(settlement) == nil)
            #expect(try await store.settle(fixture.settlement("never-opened", account: "a", hold: 1, cost: 1)) == nil)
            #expect(try await store.account(id: fixture.id("a")) == account)

            let row = try #require(
                try await store.ledger(accountID: fixture.id("a"), from: nil, to: nil, limit: 10, cursor: nil).rows
                    .first { $0.open.requestID == fixture.id("r1") }
            )
            #expect(row == LedgerRow(
                open: fixture.open("r1", account: "a", hold: 3_000), status: "completed", endReason: "stop", httpStatus: 200,
                promptTokens: 12, completionTokens: 34, usageSource: "reported", cost: Money(micros: 1_234),
                queueMillis: 1, loadMillis: 2, firstTokenMillis: 3, generationMillis: 4, finishedAt: fixture.epoch + 5_000
            ))

            // Costs above the hold are captured while the balance (less other holds) covers them.
            #expect(try await store.settle(fixture.settlement("r2", account: "a", hold: 2_000, cost: 5_000)) == Money(micros: 5_000))
            account = try #require(try await store.account(id: fixture.id("a")))
            #expect(account.balance == Money(micros: 3_766))
            #expect(account.held == .zero)
        }
    }

    @Test(arguments: Backend.available)
    func captureIsCappedSoTheBalanceNeverGoesNegative(_ backend: Backend) async throws {
        try await withStore(backend) { store, fixture in
            try await store.createAccount(fixture.account("a", balance: 1_000))
            #expect(try await store.openHold(fixture.open("r1", account: "a", hold: 300)) == .held)
            #expect(try await store.openHold(fixture.open("r2", account: "a", hold: 500)) == .held)

            // r2's hold stays reserved: r1 may take its own hold and the unheld 200, no more.
            #expect(try await store.settle(fixture.settlement("r1", account: "a", hold: 300, cost: 10_000)) == Money(micros: 500))
            var account = try #require(try await store.account(id: fixture.id("a")))
            #expect(account.balance == Money(micros: 500))
            #expect(account.held == Money(micros: 500))

            #expect(try await store.settle(fixture.settlement("r2", account: "a", hold: 500, cost: 10_000)) == Money(micros: 500))
            account = try #require(try await store.account(id: fixture.id("a")))
            #expect(account.balance == .zero)
            #expect(account.held == .zero)

            // A negative cost captures nothing.
            _ = try await store.addCredit(accountID: fixture.id("a"), amount: Money(micros: 100), reason: "x", idempotencyKey: nil, at: 1)
            #expect(try await store.openHold(fixture.open("r3", account: "a", hold: 100)) == .held)
            #expect(try await store.settle(fixture.settlement("r3", account: "a", hold: 100, cost: -50)) == .zero)
            #expect(try await store.account(id: fixture.id("a"))?.balance == Money(micros: 100))
        }
    }

    @Test(arguments: Backend.available)
    func recoveryReleasesOnlyThisInstancesRunningRows(_ backend: Backend) async throws {
        try await withStore(backend) { store, fixture in
            try await store.createAccount(fixture.account("a", balance: 10_000))
            try await store.createAccount(fixture.account("b", balance: 10_000))
            #expect(try await store.openHold(fixture.open("a1", account: "a", hold: 100, instance: "gw-1")) == .held)
            #expect(try await store.openHold(fixture.open("a2", account: "a", hold: 200, instance: "gw-1")) == .held)
            #expect(try await store.openHold(fixture.open("b1", account: "b", hold: 300, instance: "gw-1")) == .held)
            #expect(try await store.openHold(fixture.open("a3", account: "a", hold: 400, instance: "gw-2")) == .held)
            #expect(try await store.openHold(fixture.open("a4", account: "a", hold: 500, instance: "gw-1")) == .held)
            #expect(try await store.settle(fixture.settlement("a4", account: "a", hold: 500, cost: 50)) == Money(micros: 50))

            let at = fixture.epoch + 9_000
            #expect(try await store.recoverInterrupted(instance: fixture.id("gw-1"), at: at) == 3)
            #expect(try await store.recoverInterrupted(instance: fixture.id("gw-1"), at: at) == 0)

            #expect(try await store.account(id: fixture.id("a"))?.held == Money(micros: 400))
            #expect(try await store.account(id: fixture.id("a"))?.balance == Money(micros: 9_950))
            #expect(try await store.account(id: fixture.id("b"))?.held == .zero)
            let rows = try await store.ledger(accountID: nil, from: fixture.epoch, to: fixture.epoch + 1, limit: 10, cursor: nil).rows
            let byID = Dictionary(uniqueKeysWithValues: rows.map { ($0.open.requestID, $0) })
            for name in ["a1", "a2", "b1"] {
                let row = try #require(byID[fixture.id(name)])
                #expect(row.status == "interrupted")
                #expect(row.endReason == "gateway_restart")
                #expect(row.cost == .zero)
                #expect(row.finishedAt == at)
            }
            #expect(byID[fixture.id("a3")]?.status == "running")
            #expect(byID[fixture.id("a4")]?.status == "completed")
            // An interrupted row is settled already: a late settle must not touch the balance.
            #expect(try await store.settle(fixture.settlement("a1", account: "a", hold: 100, cost: 10)) == nil)
            #expect(try await store.account(id: fixture.id("a"))?.balance == Money(micros: 9_950))
        }
    }
}
