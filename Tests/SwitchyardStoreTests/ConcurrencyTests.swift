import SwitchyardCore
import SwitchyardStore
import Synchronization
import Testing

extension SQLBillingStoreTests {
    @Test(arguments: Backend.available)
    func concurrentHoldsNeverOvercommitTheBalance(_ backend: Backend) async throws {
        try await withStore(backend) { store, fixture in
            let hold: Int64 = 10_000
            try await store.createAccount(fixture.account("a", balance: 50 * hold))
            let granted = try await withThrowingTaskGroup(of: String?.self) { group in
                for index in 0..<200 {
                    group.addTask {
                        let outcome = try await store.openHold(fixture.open("r\(index)", account: "a", hold: hold))
                        return outcome == .held ? "r\(index)" : nil
                    }
                }
                return try await group.reduce(into: [String]()) { if let name = $1 { $0.append(name) } }
            }
            #expect(granted.count == 50)
            var account = try #require(try await store.account(id: fixture.id("a")))
            #expect(account.held == Money(micros: 50 * hold))
            #expect(account.available == .zero)

            // Every cost exceeds its hold, and each request is settled twice at once: each captures
            // exactly its hold (the rest of the balance stays reserved for the others), once.
            let captures = try await withThrowingTaskGroup(of: Money?.self) { group in
                for name in granted.flatMap({ [$0, $0] }) {
                    group.addTask { try await store.settle(fixture.settlement(name, account: "a", hold: hold, cost: hold + 7)) }
                }
                return try await group.reduce(into: [Money?]()) { $0.append($1) }
            }
            #expect(captures.compactMap { $0 } == Array(repeating: Money(micros: hold), count: 50))
            account = try #require(try await store.account(id: fixture.id("a")))
            #expect(account.balance == .zero)
            #expect(account.held == .zero)
        }
    }

    @Test(arguments: Backend.available)
    func concurrentHoldAndSettlePairsKeepTheBooksExact(_ backend: Backend) async throws {
        try await withStore(backend) { store, fixture in
            let hold: Int64 = 10_000
            let initial = 50 * hold
            try await store.createAccount(fixture.account("a", balance: initial))
            let done = Atomic(false)
            let violations = Atomic(0)
            // Samples the account throughout: the balance covers the holds at every moment.
            let sampler = Task {
                while !done.load(ordering: .acquiring) {
                    if let account = try await store.account(id: fixture.id("a")),
                        account.held < .zero || account.balance < account.held
                    {
                        violations.add(1, ordering: .relaxed)
                    }
                    try await Task.sleep(for: .milliseconds(2))
                }
            }
            let results = try await withThrowingTaskGroup(of: (cost: Int64, capture: Money?).self) { group in
                for index in 0..<200 {
                    group.addTask {
                        let name = "r\(index)"
                        guard try await store.openHold(fixture.open(name, account: "a", hold: hold)) == .held else {
                            return (0, nil)
                        }
                        // Some under the hold, some over it, some free.
                        let cost = Int64(index % 5) * hold / 2
                        return (cost, try await store.settle(fixture.settlement(name, account: "a", hold: hold, cost: cost)))
                    }
                }
                return try await group.reduce(into: [(cost: Int64, capture: Money?)]()) { $0.append($1) }
            }
            done.store(true, ordering: .releasing)
            try await sampler.value
            #expect(violations.load(ordering: .relaxed) == 0)

            let settled = results.filter { $0.capture != nil }
            #expect(!settled.isEmpty)
            #expect(settled.allSatisfy { result in result.capture.map { $0.micros <= max(result.cost, 0) } ?? false })
            let captured = settled.reduce(Int64(0)) { $0 + ($1.capture?.micros ?? 0) }

            let account = try #require(try await store.account(id: fixture.id("a")))
            #expect(account.held == .zero)
            #expect(account.balance >= .zero)
            #expect(initial - account.balance.micros == captured)
            var ledgerTotal: Int64 = 0
            var rows = 0
            var cursor: String?
            repeat {
                let page = try await store.ledger(accountID: fixture.id("a"), from: nil, to: nil, limit: 64, cursor: cursor)
                ledgerTotal += page.rows.reduce(0) { $0 + $1.cost.micros }
                rows += page.rows.count
                cursor = page.nextCursor
            } while cursor != nil
            #expect(rows == settled.count)
            #expect(ledgerTotal == captured)
        }
    }

    /// Two stores on one database: two gateway replicas on Postgres, or on SQLite the gateway and a
    /// CLI command, whose connections contend for the file's write lock.
    @Test(arguments: Backend.available)
    func twoStoresOnOneDatabaseShareTheBalanceExactly(_ backend: Backend) async throws {
        try await withStore(backend) { store, fixture in
            let hold: Int64 = 1_000
            try await store.createAccount(fixture.account("a", balance: 20 * hold))
            let other = try await openStore(fixture.url)
            let captured: Int64
            do {
                captured = try await withThrowingTaskGroup(of: Int64.self) { group in
                    for index in 0..<80 {
                        let replica = index.isMultiple(of: 2) ? store : other
                        group.addTask {
                            let name = "r\(index)"
                            guard try await replica.openHold(fixture.open(name, account: "a", hold: hold)) == .held else { return 0 }
                            let settlement = fixture.settlement(name, account: "a", hold: hold, cost: hold * 3 / 4)
                            return try await replica.settle(settlement)?.micros ?? 0
                        }
                    }
                    return try await group.reduce(0, +)
                }
            } catch {
                await other.close()
                throw error
            }
            await other.close()
            let account = try #require(try await store.account(id: fixture.id("a")))
            #expect(account.held == .zero)
            #expect(account.balance.micros == 20 * hold - captured)
            #expect(captured > 0)
        }
    }
}
