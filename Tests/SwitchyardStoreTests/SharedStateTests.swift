import Foundation
import Logging
import NIOPosix
import Synchronization
import SwitchyardCore
import Testing

@testable import SwitchyardStore

/// The state several replicas share on PostgreSQL (issue 14), with each "replica" a store of its own
/// (its own connection pool) on the one database, as two gateway processes would be. The two-process
/// tests are `tests/replicas/`.
@Suite(.enabled(if: Backend.postgresURL != nil), .timeLimit(.minutes(2)))
struct SharedStateTests {
    struct Replica {
        let store: SQLBillingStore
        let shared: SharedState
        var limiter: PostgresRateLimiter { shared.limiter as! PostgresRateLimiter }
        var bus: PostgresReplicaBus { shared.bus as! PostgresReplicaBus }
        var heartbeat: ReplicaHeartbeat { shared.services.compactMap { $0 as? ReplicaHeartbeat }[0] }
    }

    /// Two replicas named `a` and `b` on the test database, closed afterwards.
    func withReplicas(
        deadAfter: Duration = .seconds(10), _ body: (Replica, Replica, Fixture) async throws -> Void
    ) async throws {
        let url = try #require(Backend.postgresURL)
        let fixture = Fixture(url: url)
        var replicas: [Replica] = []
        for name in ["a", "b"] {
            let store = try await openStore(url)
            try await store.migrate()
            let shared = try #require(
                store.sharedState(
                    instance: fixture.id("gw-\(name)"), heartbeat: .milliseconds(100), deadAfter: deadAfter,
                    eventLoopGroup: MultiThreadedEventLoopGroup.singleton))
            replicas.append(Replica(store: store, shared: shared))
        }
        do {
            try await body(replicas[0], replicas[1], fixture)
        } catch {
            for replica in replicas { await replica.store.close() }
            throw error
        }
        for replica in replicas { await replica.store.close() }
    }

    func rule(_ fixture: Fixture, rpm: Int? = nil, tpm: Int? = nil, concurrent: Int? = nil) -> RateLimitRule {
        RateLimitRule(
            scope: .key, name: fixture.id("key"), label: "this key", requestsPerMinute: rpm, tokensPerMinute: tpm,
            concurrent: concurrent)
    }

    @Test func twoReplicasAdmitExactlyTheLimitBetweenThem() async throws {
        try await withReplicas { a, b, fixture in
            let rule = rule(fixture, rpm: 60)
            let admitted = try await withThrowingTaskGroup(of: Bool.self) { group in
                for index in 0..<200 {
                    let limiter = index % 2 == 0 ? a.limiter : b.limiter
                    group.addTask {
                        do {
                            _ = try await limiter.admit([rule], tokens: 0)
                            return true
                        } catch let refusal as RateLimitRefusal {
                            #expect(refusal.isLimit && refusal.kind == .requests && refusal.error.httpStatus == 429)
                            return false
                        }
                    }
                }
                return try await group.reduce(0) { $0 + ($1 ? 1 : 0) }
            }
            #expect(admitted == 60)
        }
    }

    @Test func tokensAreHeldAtTheEstimateAndSettledToWhatWasUsedAcrossReplicas() async throws {
        try await withReplicas { a, b, fixture in
            let rule = rule(fixture, tpm: 1000)
            let grant = try await a.limiter.admit([rule], tokens: 900)
            await #expect(throws: RateLimitRefusal.self) { try await b.limiter.admit([rule], tokens: 200) }
            a.limiter.finish(grant, tokens: 100)
            // The finish is queued, not awaited: B sees it once it is written.
            var admitted = false
            for _ in 0..<50 where !admitted {
                admitted = (try? await b.limiter.admit([rule], tokens: 800)) != nil
                if !admitted { try await Task.sleep(for: .milliseconds(20)) }
            }
            #expect(admitted)
        }
    }

    @Test func aConcurrencyLimitHoldsAcrossReplicasAtEveryInstant() async throws {
        try await withReplicas { a, b, fixture in
            let rule = rule(fixture, concurrent: 4)
            let counts = Counts()
            try await withThrowingTaskGroup(of: Void.self) { group in
                for index in 0..<40 {
                    let limiter = index % 2 == 0 ? a.limiter : b.limiter
                    group.addTask {
                        // Each caller retries for a while, so slots are taken, freed and taken again.
                        for _ in 0..<30 {
                            guard let grant = try? await limiter.admit([rule], tokens: 0) else {
                                try await Task.sleep(for: .milliseconds(5))
                                continue
                            }
                            let now = counts.running.add(1, ordering: .acquiringAndReleasing).newValue
                            _ = counts.most.max(now, ordering: .acquiringAndReleasing)
                            try await Task.sleep(for: .milliseconds(10))
                            counts.running.subtract(1, ordering: .acquiringAndReleasing)
                            counts.served.add(1, ordering: .relaxed)
                            limiter.finish(grant, tokens: nil)
                            return
                        }
                    }
                }
                try await group.waitForAll()
            }
            #expect(counts.most.load(ordering: .relaxed) <= 4)
            #expect(counts.served.load(ordering: .relaxed) > 4)
        }
    }

    @Test func aDeadReplicasSlotsAndHoldsAreReleasedByASurvivor() async throws {
        try await withReplicas(deadAfter: .milliseconds(300)) { a, b, fixture in
            try await a.store.createAccount(fixture.account("acct", balance: 1_000_000))
            let rule = rule(fixture, concurrent: 1)
            _ = try await a.heartbeat.beat()
            // A admits a request, holds its price and then dies: it never beats again.
            _ = try await a.limiter.admit([rule], tokens: 0)
            #expect(try await a.store.openHold(fixture.open("r1", account: "acct", hold: 5_000, instance: "gw-a")) == .held)
            await #expect(throws: RateLimitRefusal.self) { try await b.limiter.admit([rule], tokens: 0) }
            var released = 0
            for _ in 0..<40 where released == 0 {
                try await Task.sleep(for: .milliseconds(50))
                released = try await b.heartbeat.beat().released
            }
            #expect(released == 1)
            let account = try #require(try await b.store.account(id: fixture.id("acct")))
            #expect(account.held == .zero && account.balance == Money(micros: 1_000_000))
            let row = try #require(
                try await b.store.ledger(accountID: fixture.id("acct"), from: nil, to: nil, limit: 10, cursor: nil).rows.first)
            #expect(row.status == "interrupted" && row.endReason == "replica_lost" && row.cost == .zero)
            // Its slot was given back with its rows (its lease would have expired by itself soon after).
            _ = try await b.limiter.admit([rule], tokens: 0)
        }
    }

    @Test func aLiveReplicaRenewsItsLeasesPastTheirFirstExpiry() async throws {
        try await withReplicas(deadAfter: .milliseconds(400)) { a, b, fixture in
            let rule = rule(fixture, concurrent: 1)
            _ = try await a.limiter.admit([rule], tokens: 0)
            // Renewed past its first expiry: still held.
            for _ in 0..<6 {
                try await Task.sleep(for: .milliseconds(100))
                _ = try await a.heartbeat.beat()
            }
            await #expect(throws: RateLimitRefusal.self) { try await b.limiter.admit([rule], tokens: 0) }
        }
    }

    @Test func eventsReachTheOtherReplicaAndNeverTheirSender() async throws {
        try await withReplicas { a, b, fixture in
            let seenByA = Mutex<[ReplicaEvent]>([])
            let seenByB = Mutex<[ReplicaEvent]>([])
            // Other tests' stores share the database and so the channel: only this test's events count.
            let ours: @Sendable (ReplicaEvent) -> Bool = { event in
                event == .resynchronized || String(describing: event).contains(fixture.id(""))
            }
            a.bus.subscribe { event in if ours(event) { seenByA.withLock { $0.append(event) } } }
            b.bus.subscribe { event in if ours(event) { seenByB.withLock { $0.append(event) } } }
            let listeners = Task {
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask { try await a.bus.run() }
                    group.addTask { try await b.bus.run() }
                    try await group.waitForAll()
                }
            }
            defer { listeners.cancel() }
            for _ in 0..<100 where !(a.bus.isConnected && b.bus.isConnected) { try await Task.sleep(for: .milliseconds(20)) }
            #expect(a.bus.isConnected && b.bus.isConnected)

            let stop = ReplicaEvent.stopRequest(id: fixture.id("chatcmpl"), accountID: fixture.id("acct"))
            let sent = ContinuousClock.now
            try await a.bus.publish(stop)
            // A revocation in the store (the admin API's, or the CLI's) reaches both.
            try await a.store.createAccount(fixture.account("acct"))
            try await a.store.createKey(fixture.key("k", account: "acct"))
            #expect(try await a.store.revokeKey(id: fixture.id("k"), at: 1_700_000_200))
            for _ in 0..<100 where seenByB.withLock({ $0.count }) < 3 || seenByA.withLock({ $0.count }) < 2 {
                try await Task.sleep(for: .milliseconds(10))
            }
            #expect(ContinuousClock.now - sent < .seconds(1))
            #expect(seenByB.withLock { $0 } == [.resynchronized, stop, .forgetKey(id: fixture.id("k"))])
            #expect(seenByA.withLock { $0 } == [.resynchronized, .forgetKey(id: fixture.id("k"))])

            let elsewhere = try await b.bus.runningElsewhere(id: fixture.id("nothing"), accountID: fixture.id("acct"))
            #expect(elsewhere == nil)
        }
    }

    @Test func theRequestsOfAnotherReplicaAreFoundInTheSharedLedger() async throws {
        try await withReplicas { a, b, fixture in
            try await a.store.createAccount(fixture.account("acct", balance: 1_000_000))
            #expect(try await a.store.openHold(fixture.open("r1", account: "acct", hold: 10, instance: "gw-a")) == .held)
            let found = try await b.bus.runningElsewhere(id: fixture.id("r1"), accountID: fixture.id("acct"))
            #expect(found?.model == "qwen" && found?.instance == fixture.id("gw-a"))
            // Never another account's, never its own replica's.
            #expect(try await b.bus.runningElsewhere(id: fixture.id("r1"), accountID: fixture.id("other")) == nil)
            #expect(try await a.bus.runningElsewhere(id: fixture.id("r1"), accountID: fixture.id("acct")) == nil)
            #expect(try await b.bus.runningElsewhere(accountID: fixture.id("acct"), endUser: "user-7") == 1)
            #expect(try await b.bus.runningElsewhere(accountID: fixture.id("acct"), endUser: "someone") == 0)
        }
    }

    @Test func anUnreachableDatabaseRefusesRatherThanCountingLocally() async throws {
        let store = try await openStore("postgres://switchyard:switchyard@127.0.0.1:1/nowhere?sslmode=disable")
        let shared = try #require(
            store.sharedState(
                instance: "gw-x", heartbeat: .seconds(1), deadAfter: .seconds(10),
                eventLoopGroup: MultiThreadedEventLoopGroup.singleton))
        let rule = RateLimitRule(scope: .key, name: "k", label: "this key", requestsPerMinute: 1000)
        do {
            _ = try await shared.limiter.admit([rule], tokens: 0)
            Issue.record("admitted without the database")
        } catch {
            #expect(!error.isLimit && error.error.httpStatus == 503 && error.error.code == "database_unavailable")
        }
        // What no limit applies to does not need the database at all.
        _ = try await shared.limiter.admit([RateLimitRule(scope: .key, name: "k", label: "this key")], tokens: 0)
        #expect(!shared.bus.isConnected)
        await store.close()
    }

    @Test func windowsRoundTripThroughTheirText() {
        var window = SlidingWindow(limit: 10)
        window.add(3, now: 1_000)
        window.add(2, now: 1_500)
        window.add(4, now: 5_000)
        let text = WindowText.encode(window)
        #expect(text == "1:5,5:4")
        var back = try! #require(WindowText.decode(text))
        back.limit = 10
        #expect(back == window)
        #expect(WindowText.decode("") == nil && WindowText.encode(nil) == "")
        #expect(LimitBatch.rowKey(LimitBook.Key(scope: .endUser, name: "acct\u{0}user")) == "end_user:acct\u{1F}user")
    }
}

private final class Counts: Sendable {
    let running = Atomic(0)
    let most = Atomic(0)
    let served = Atomic(0)
}
