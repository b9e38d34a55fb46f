import Foundation
import Logging
import ServiceLifecycle
import SwitchyardCore
import SwitchyardStore
import Synchronization
import Testing

extension SQLBillingStoreTests {
    @Test(arguments: Backend.available)
    func ledgerPagesNewestFirstWithCursorsAndTimeFilters(_ backend: Backend) async throws {
        try await withStore(backend) { store, fixture in
            try await store.createAccount(fixture.account("a", balance: 1_000_000))
            try await store.createAccount(fixture.account("b", balance: 1_000_000))
            // Two rows share each start time, so the request id must break ties.
            let starts: [(name: String, account: String, offset: Int64)] = [
                ("r1", "a", 0), ("r2", "b", 0), ("r3", "a", 10), ("r4", "a", 10), ("r5", "b", 20), ("r6", "a", 30),
                ("r7", "a", 40),
            ]
            for start in starts {
                #expect(try await store.openHold(fixture.open(start.name, account: start.account, hold: 1, at: start.offset)) == .held)
            }
            let window = (from: fixture.epoch, to: fixture.epoch + 1_000)

            var names: [String] = []
            var cursor: String?
            var pages = 0
            repeat {
                let page = try await store.ledger(accountID: nil, from: window.from, to: window.to, limit: 3, cursor: cursor)
                #expect(page.rows.count <= 3)
                names += page.rows.map { String($0.open.requestID.dropFirst(fixture.tag.count + 1)) }
                cursor = page.nextCursor
                pages += 1
            } while cursor != nil && pages < 10
            #expect(names == ["r7", "r6", "r5", "r4", "r3", "r2", "r1"])
            #expect(pages == 3)

            // An exact fit has no further page.
            let exact = try await store.ledger(accountID: fixture.id("b"), from: nil, to: nil, limit: 2, cursor: nil)
            #expect(exact.rows.map(\.open.requestID) == [fixture.id("r5"), fixture.id("r2")])
            #expect(exact.nextCursor == nil)

            let onlyA = try await store.ledger(accountID: fixture.id("a"), from: nil, to: nil, limit: 2, cursor: nil)
            #expect(onlyA.rows.map(\.open.requestID) == [fixture.id("r7"), fixture.id("r6")])
            let restOfA = try await store.ledger(accountID: fixture.id("a"), from: nil, to: nil, limit: 10, cursor: onlyA.nextCursor)
            #expect(restOfA.rows.map(\.open.requestID) == [fixture.id("r4"), fixture.id("r3"), fixture.id("r1")])

            // `from` is inclusive, `to` exclusive.
            let middle = try await store.ledger(
                accountID: nil, from: fixture.epoch + 10, to: fixture.epoch + 30, limit: 10, cursor: nil
            )
            #expect(middle.rows.map(\.open.requestID) == [fixture.id("r5"), fixture.id("r4"), fixture.id("r3")])
        }
    }

    @Test(arguments: Backend.available)
    func malformedCursorsAreRejected(_ backend: Backend) async throws {
        try await withStore(backend) { store, _ in
            for cursor in ["", "%%%", Data("no-separator".utf8).base64EncodedString(), Data("abc:r1".utf8).base64EncodedString()] {
                await #expect(throws: BillingStoreError.invalidCursor) {
                    try await store.ledger(accountID: nil, from: nil, to: nil, limit: 10, cursor: cursor)
                }
            }
        }
    }

    @Test(arguments: Backend.available)
    func migratingAgainIsHarmless(_ backend: Backend) async throws {
        try await withStore(backend) { store, fixture in
            try await store.createAccount(fixture.account("a", balance: 42))
            try await store.migrate()
            // As replicas starting together would.
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<4 { group.addTask { try await store.migrate() } }
                try await group.waitForAll()
            }
            #expect(try await store.account(id: fixture.id("a"))?.balance == Money(micros: 42))
        }
    }

    /// In the gateway's order: the ledger writer after the store, so on shutdown it writes the
    /// settlements handed over until then before the store closes; later ones are refused.
    @Test(arguments: Backend.available)
    func itRunsAsAServiceAndClosesOnGracefulShutdown(_ backend: Backend) async throws {
        try await withStore(backend, runWriter: false) { store, fixture in
            try await store.createAccount(fixture.account("a", balance: 10_000))
            var logger = Logger(label: "store-tests")
            logger.logLevel = .warning
            let group = ServiceGroup(services: [store, store.ledgerWriter], logger: logger)
            let captures = Mutex<[Int: Money]>([:])
            try await withThrowingTaskGroup(of: Void.self) { tasks in
                tasks.addTask { try await group.run() }
                for index in 0..<20 {
                    #expect(try await store.openHold(fixture.open("r\(index)", account: "a", hold: 100)) == .held)
                }
                // Handed over without waiting, as a deinit would, just before the signal.
                for index in 0..<20 {
                    store.settleEventually(fixture.settlement("r\(index)", account: "a", hold: 100, cost: 10)) { result in
                        if case .success(let capture?) = result { captures.withLock { $0[index] = capture } }
                    }
                }
                await group.triggerGracefulShutdown()
                try await tasks.waitForAll()
            }
            #expect(captures.withLock { $0 } == Dictionary(uniqueKeysWithValues: (0..<20).map { ($0, Money(micros: 10)) }))
            await #expect(throws: SQLStoreError.closed) { try await store.account(id: fixture.id("a")) }
            await #expect(throws: SQLStoreError.closed) { try await store.openHold(fixture.open("late", account: "a", hold: 1)) }
            let refused = Mutex<(any Error)?>(nil)
            store.settleEventually(fixture.settlement("r0", account: "a", hold: 100, cost: 10)) { result in
                if case .failure(let error) = result { refused.withLock { $0 = error } }
            }
            #expect(refused.withLock { $0 as? SQLStoreError } == .closed)

            let reopened = try await openStore(fixture.url)
            let account = try await reopened.account(id: fixture.id("a"))
            await reopened.close()
            #expect(account?.balance == Money(micros: 10_000 - 20 * 10))
            #expect(account?.held == .zero)
        }
    }

    @Test func aSQLiteFileKeepsItsDataAcrossOpens() async throws {
        // In a directory that does not exist yet.
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("switchyard-reopen-\(UUID())")
        let path = directory.appendingPathComponent("data/billing.sqlite").path
        defer { try? FileManager.default.removeItem(at: directory) }
        let fixture = Fixture()
        let first = try await openStore("sqlite:" + path)
        try await first.migrate()
        try await first.createAccount(fixture.account("a", balance: 5))
        await first.close()
        await first.close()
        await #expect(throws: SQLStoreError.closed) { try await first.account(id: fixture.id("a")) }

        let second = try await openStore("sqlite://" + path)
        try await second.migrate()
        #expect(try await second.account(id: fixture.id("a"))?.balance == Money(micros: 5))
        await second.close()
    }

    @Test func otherURLSchemesAreRejectedByName() async throws {
        await #expect(throws: SQLStoreError.unsupportedURL(scheme: "mysql")) {
            _ = try await openStore("mysql://user:pass@localhost/db")
        }
        await #expect(throws: SQLStoreError.self) { _ = try await openStore("sqlite:") }
    }
}
