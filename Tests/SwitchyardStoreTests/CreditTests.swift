import SwitchyardCore
import SwitchyardStore
import Testing

extension SQLBillingStoreTests {
    @Test(arguments: Backend.available)
    func creditsChangeTheBalanceOncePerIdempotencyKey(_ backend: Backend) async throws {
        try await withStore(backend) { store, fixture in
            let account = fixture.account("a", balance: 1_000_000)
            try await store.createAccount(account)

            var expected = account
            expected.balance = Money(micros: 3_500_000)
            let topUp = try await store.addCredit(
                accountID: account.id, amount: Money(micros: 2_500_000), reason: "top-up",
                idempotencyKey: fixture.id("pay-1"), at: 1_700_000_500
            )
            #expect(topUp == .applied(expected))
            let again = try await store.addCredit(
                accountID: account.id, amount: Money(micros: 2_500_000), reason: "top-up",
                idempotencyKey: fixture.id("pay-1"), at: 1_700_000_600
            )
            #expect(again == .duplicate(expected))

            expected.balance = Money(micros: 3_000_000)
            let adjustment = try await store.addCredit(
                accountID: account.id, amount: Money(micros: -500_000), reason: "correction", idempotencyKey: nil,
                at: 1_700_000_700
            )
            #expect(adjustment == .applied(expected))
            // Without an idempotency key every call counts.
            expected.balance = Money(micros: 2_500_000)
            let secondAdjustment = try await store.addCredit(
                accountID: account.id, amount: Money(micros: -500_000), reason: "correction", idempotencyKey: nil,
                at: 1_700_000_800
            )
            #expect(secondAdjustment == .applied(expected))
            #expect(try await store.account(id: account.id) == expected)

            let unknown = try await store.addCredit(
                accountID: fixture.id("ghost"), amount: Money(micros: 1), reason: "x", idempotencyKey: fixture.id("pay-2"),
                at: 1
            )
            #expect(unknown == .accountNotFound)
        }
    }

    @Test(arguments: Backend.available)
    func racingCreditsWithOneKeyApplyOnce(_ backend: Backend) async throws {
        try await withStore(backend) { store, fixture in
            let account = fixture.account("a", balance: 0)
            try await store.createAccount(account)
            let outcomes = try await withThrowingTaskGroup(of: CreditOutcome.self) { group in
                for _ in 0..<20 {
                    group.addTask {
                        try await store.addCredit(
                            accountID: account.id, amount: Money(micros: 7_000_000), reason: "top-up",
                            idempotencyKey: fixture.id("once"), at: 1_700_000_000
                        )
                    }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            let applied = outcomes.filter { if case .applied = $0 { true } else { false } }
            let duplicates = outcomes.filter { if case .duplicate = $0 { true } else { false } }
            #expect(applied.count == 1)
            #expect(duplicates.count == 19)
            // A loser only learns of the conflict once the winner has committed, so it sees the credit.
            #expect(duplicates.allSatisfy { $0 == .duplicate(applied.first.flatMap(\.account) ?? account) })
            #expect(try await store.account(id: account.id)?.balance == Money(micros: 7_000_000))
        }
    }
}

extension CreditOutcome {
    var account: Account? {
        switch self {
        case .applied(let account), .duplicate(let account): account
        case .accountNotFound: nil
        }
    }
}
