import Logging
import SQLKit
import ServiceLifecycle
import SwitchyardCore

/// Keeps this replica known to the others, and cleans up after the dead. Every `interval`, in one
/// transaction on the database's clock:
/// - marks this replica seen (`replicas`);
/// - renews the leases of the concurrency slots it holds (a lease whose release was lost with a failed
///   write is not renewed, and expires);
/// - releases what dead replicas — not seen for `deadAfter` — left: their running ledger rows become
///   `interrupted` / `replica_lost` with no charge and their holds are released (their leases have
///   expired by then: a lease lasts `deadAfter` unless renewed);
/// - deletes expired leases, and limit windows nobody touched for two minutes (every bucket expired).
///
/// A replica that was only cut off from the database for longer than `deadAfter` finds its rows
/// released when it comes back: those requests are then not charged (never charged twice), and it
/// says so in its log.
final class ReplicaHeartbeat: Service, Sendable {
    let runner: any TransactionRunner
    let instance: String
    let interval: Duration
    let deadAfter: Duration
    let limiter: PostgresRateLimiter
    let logger: Logger

    init(
        runner: any TransactionRunner, instance: String, interval: Duration, deadAfter: Duration,
        limiter: PostgresRateLimiter, logger: Logger
    ) {
        self.runner = runner
        self.instance = instance
        self.interval = interval
        self.deadAfter = deadAfter
        self.limiter = limiter
        self.logger = logger
    }

    func run() async throws {
        await cancelWhenGracefulShutdown {
            var beats = 0
            var failing = false
            while !Task.isCancelled {
                do {
                    let outcome = try await self.beat()
                    if failing { self.logger.notice("the heartbeat reaches the database again") }
                    failing = false
                    if !outcome.known && beats > 0 {
                        self.logger.error(
                            "this replica was taken for dead by another (not seen for replicas.dead_after): the requests it was running were released uncharged")
                    }
                    if outcome.released > 0 {
                        self.logger.notice(
                            "released the holds of requests left by dead replicas",
                            metadata: ["requests": "\(outcome.released)", "replicas": "\(outcome.dead.joined(separator: ","))"])
                    }
                    beats += 1
                } catch {
                    if !failing {
                        self.logger.warning("the heartbeat cannot reach the database", metadata: ["error": "\(String(reflecting: error))"])
                    }
                    failing = true
                }
                try? await Task.sleep(for: self.interval)
            }
        }
        // Leaving cleanly: the others need not wait for `deadAfter` to know.
        _ = try? await runner.transaction { [instance] database in
            try await database.raw("DELETE FROM limit_leases WHERE instance = \(bind: instance)").run()
            try await database.raw("DELETE FROM replicas WHERE instance = \(bind: instance)").run()
        }
    }

    func forgetPreviousLife() async throws {
        let instance = self.instance
        try await runner.transaction { database in
            try await database.raw("DELETE FROM limit_leases WHERE instance = \(bind: instance)").run()
        }
    }

    struct Outcome: Sendable {
        /// Whether this replica's row was there (false at the first beat, or after being taken for dead).
        var known: Bool
        var released: Int
        var dead: [String]
    }

    /// Three transactions, so that none holds locks another writer waits for in another order;
    /// rows a batch of admissions is working on are skipped (`SKIP LOCKED`), never waited for.
    func beat() async throws -> Outcome {
        let live = limiter.liveGrants
        let instance = self.instance
        let leaseMillis = deadAfter.millis
        let known = try await runner.transaction { database in
            let now = try await ReplicaWire.databaseMillis(in: database)
            let known = try await database.raw(
                """
                INSERT INTO replicas (instance, seen_ms, started_ms) VALUES (\(bind: instance), \(bind: now), \(bind: now))
                ON CONFLICT (instance) DO UPDATE SET seen_ms = excluded.seen_ms
                RETURNING (xmax <> 0) AS known
                """
            ).all().first?.decode(column: "known", as: Bool.self) ?? false
            // Only the slots still held are renewed; a lease whose release was lost expires.
            if !live.isEmpty {
                try await database.raw(
                    """
                    UPDATE limit_leases SET expires_ms = \(bind: now + leaseMillis) WHERE ctid IN (
                        SELECT ctid FROM limit_leases WHERE instance = \(bind: instance) AND grant_id = ANY(\(bind: live))
                        FOR UPDATE SKIP LOCKED)
                    """
                ).run()
            }
            return known
        }

        let (released, dead) = try await runner.transaction { database -> (Int, [String]) in
            let now = try await ReplicaWire.databaseMillis(in: database)
            var released = 0
            let dead = try await database.raw(
                """
                SELECT instance FROM replicas WHERE seen_ms < \(bind: now - leaseMillis) AND instance <> \(bind: instance)
                ORDER BY instance FOR UPDATE SKIP LOCKED
                """
            ).all().map { try $0.decode(column: "instance", as: String.self) }
            for replica in dead {
                released += try await SQLBillingStore.releaseRunning(
                    instance: replica, reason: EndReason.replicaLost.rawValue, at: now, in: database)
                // Its slots are given back now, not when their leases run out.
                try await database.raw("DELETE FROM limit_leases WHERE instance = \(bind: replica)").run()
                try await database.raw("DELETE FROM replicas WHERE instance = \(bind: replica)").run()
            }
            return (released, dead)
        }

        try await runner.transaction { database in
            let now = try await ReplicaWire.databaseMillis(in: database)
            // Leases not renewed (their replica died or lost them) and windows idle for two minutes
            // (every bucket long expired).
            try await database.raw(
                """
                DELETE FROM limit_leases WHERE ctid IN (
                    SELECT ctid FROM limit_leases WHERE expires_ms <= \(bind: now) FOR UPDATE SKIP LOCKED)
                """
            ).run()
            try await database.raw(
                """
                DELETE FROM limit_windows WHERE scope IN (
                    SELECT scope FROM limit_windows WHERE touched_ms < \(bind: now - 120_000) FOR UPDATE SKIP LOCKED)
                """
            ).run()
        }
        return Outcome(known: known, released: released, dead: dead)
    }
}
