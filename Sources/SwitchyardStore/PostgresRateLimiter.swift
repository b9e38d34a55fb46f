import Logging
import SQLKit
import ServiceLifecycle
import SwitchyardCore
import Synchronization

/// What the shared limiter writes: admissions, and the ends of admitted requests.
enum LimitWrite: Sendable {
    case admit(rules: [RateLimitRule], tokens: Int, id: UInt64)
    case finish(RateLimitGrant, tokens: Int?)
    case revoke(RateLimitGrant)
}

enum LimitWriteResult: Sendable {
    case admitted(Result<RateLimitGrant, RateLimitRefusal>)
    case done
}

/// `RateLimiting` shared by every replica on one PostgreSQL database, exact across them.
///
/// The windows of each limited scope (account, key, end user, model) are a row (`limit_windows`), at
/// most 61 one-second buckets per window (`SlidingWindow`); each concurrency slot held is a lease row
/// (`limit_leases`) that the replica holding it renews (`ReplicaHeartbeat`), so a replica that dies
/// gives its slots back once its leases expire (`replicas.dead_after`). Admissions and releases are
/// group-committed (`GroupCommit`): one transaction per batch locks the rows of every scope the batch
/// names (in one order, so batches cannot deadlock), reads the database's clock, applies the batch in
/// arrival order with the same `LimitBook` the in-memory adapter uses, and writes the rows back —
/// four statements however large the batch (make missing rows, lock, read, write), never a
/// transaction per counter.
///
/// Fail closed: when the database cannot be reached, admission throws `RateLimitRefusal.unavailable`
/// (a 503) rather than counting locally. Requests that no limit applies to never touch it.
public final class PostgresRateLimiter: RateLimiting, Service {
    let commits: GroupCommit<LimitWrite, LimitWriteResult>
    /// Grants of this replica that hold a slot: the heartbeat renews their leases and deletes any
    /// other lease of this replica (one whose release was lost with a failed write).
    private let live = Mutex<Set<Int64>>([])
    private let logger: Logger

    init(runner: any TransactionRunner, instance: String, lease: Duration, logger: Logger) {
        self.logger = logger
        let leaseMillis = lease.millis
        self.commits = GroupCommit(maxBatch: 256) { writes in
            do {
                let results = try await runner.transaction { database in
                    try await LimitBatch(writes).execute(instance: instance, leaseMillis: leaseMillis, in: database)
                }
                return results.map { .success($0) }
            } catch {
                return writes.map { _ in .failure(error) }
            }
        }
    }

    public func run() async throws {
        try await commits.run()
    }

    var liveGrants: [Int64] { live.withLock { Array($0) } }

    public func admit(_ rules: [RateLimitRule], tokens: Int) async throws(RateLimitRefusal) -> RateLimitGrant {
        let rules = rules.filter(\.limitsAnything)
        guard !rules.isEmpty else { return RateLimitGrant(id: 0, scopes: [], snapshot: RateLimitSnapshot()) }
        // Ids are global across replicas: random 63-bit numbers (a collision needs ~3·10⁹ grants alive
        // at once). Counted live before the lease can exist, so a heartbeat never deletes it.
        let id = Int64.random(in: 1...Int64.max)
        let holdsSlot = rules.contains { $0.concurrent != nil }
        if holdsSlot { _ = live.withLock { $0.insert(id) } }
        let result: LimitWriteResult
        do {
            // At most 5 s: a database that stopped answering refuses the request rather than hold it
            // (an admission written later only errs on the side of the limit, and its lease expires).
            let commits = self.commits
            result = try await answered(within: .seconds(5)) {
                try await commits.submit(.admit(rules: rules, tokens: tokens, id: UInt64(id)))
            }
        } catch {
            if holdsSlot { _ = live.withLock { $0.remove(id) } }
            logger.warning(
                "refusing a request: the shared limits cannot be read", metadata: ["error": "\(String(reflecting: error))"])
            throw RateLimitRefusal.unavailable()
        }
        guard case .admitted(let outcome) = result else { throw RateLimitRefusal.unavailable() }
        switch outcome {
        case .success(let grant): return grant
        case .failure(let refusal):
            if holdsSlot { _ = live.withLock { $0.remove(id) } }
            throw refusal
        }
    }

    public func finish(_ grant: RateLimitGrant, tokens: Int?) {
        release(.finish(grant, tokens: tokens), grant)
    }

    public func revoke(_ grant: RateLimitGrant) {
        release(.revoke(grant), grant)
    }

    private func release(_ write: LimitWrite, _ grant: RateLimitGrant) {
        guard !grant.scopes.isEmpty else { return }
        _ = live.withLock { $0.remove(Int64(bitPattern: grant.id)) }
        commits.enqueue(write) { [logger] result in
            // A lost release costs nothing lasting: the lease goes at the next heartbeat, the window's
            // estimate leaves with its bucket.
            if case .failure(let error) = result {
                logger.warning("a limits release was not written", metadata: ["error": "\(String(reflecting: error))"])
            }
        }
    }
}

/// One transaction's worth of `LimitWrite`s, decided by `LimitBook`.
struct LimitBatch: Sendable {
    let writes: [LimitWrite]

    init(_ writes: [LimitWrite]) {
        self.writes = writes
    }

    /// A scope's row key: `key:key_abc`, `end_user:acct␟user` (PostgreSQL text cannot hold NUL).
    static func rowKey(_ key: LimitBook.Key) -> String {
        key.scope.rawValue + ":" + key.name.replacingOccurrences(of: "\u{0}", with: "\u{1F}")
    }

    private static func keys(of write: LimitWrite) -> [LimitBook.Key] {
        switch write {
        case .admit(let rules, _, _): rules.map { LimitBook.Key(scope: $0.scope, name: $0.name) }
        case .finish(let grant, _), .revoke(let grant): grant.scopes.map { LimitBook.Key(scope: $0.scope, name: $0.name) }
        }
    }

    func execute(instance: String, leaseMillis: Int64, in database: any SQLDatabase) async throws -> [LimitWriteResult] {
        var keysByRow: [String: LimitBook.Key] = [:]
        var admitted = Set<String>()
        var slotted = Set<String>()
        var released: [Int64] = []
        for write in writes {
            for key in Self.keys(of: write) { keysByRow[Self.rowKey(key)] = key }
            switch write {
            case .admit(let rules, _, _):
                for rule in rules {
                    let row = Self.rowKey(LimitBook.Key(scope: rule.scope, name: rule.name))
                    admitted.insert(row)
                    if rule.concurrent != nil { slotted.insert(row) }
                }
            case .finish(let grant, _), .revoke(let grant):
                if grant.scopes.contains(where: \.concurrent) { released.append(Int64(bitPattern: grant.id)) }
            }
        }
        let rows = keysByRow.keys.sorted()
        guard !rows.isEmpty else { return writes.map { _ in .done } }

        // Lock every scope the batch names, in one order; rows of new scopes are made first. A row
        // can vanish between the two statements (the heartbeat deletes rows idle for minutes), so
        // admitted scopes are made and locked until all are held. (Making rows first, as the batch's
        // first statement, is what keeps this deadlock-free: an insert that waits for another
        // batch's uncommitted insert of the same row holds no lock yet. Locking first and inserting
        // the missing rows afterwards would save a statement and could deadlock.)
        var book = LimitBook()
        var stored: [String: (requests: String, tokens: String)] = [:]
        for _ in 0..<3 {
            let missing = admitted.subtracting(stored.keys).sorted()
            if !missing.isEmpty {
                var values: SQLQueryString = ""
                for (index, row) in missing.enumerated() {
                    if index > 0 { values += ", " }
                    values += "(\(bind: row), '', '', 0)"
                }
                try await database.raw(
                    """
                    INSERT INTO limit_windows (scope, requests, tokens, touched_ms) VALUES \(values)
                    ON CONFLICT (scope) DO NOTHING
                    """
                ).run()
            }
            for row in try await database.raw(
                "SELECT scope, requests, tokens FROM limit_windows WHERE scope IN (\(binds: rows)) ORDER BY scope FOR UPDATE"
            ).all() {
                let name: String = try row.decode(column: "scope", as: String.self)
                guard let key = keysByRow[name], stored[name] == nil else { continue }
                let requests = try row.decode(column: "requests", as: String.self)
                let tokens = try row.decode(column: "tokens", as: String.self)
                stored[name] = (requests, tokens)
                book.entries[key] = LimitBook.Entry(requests: WindowText.decode(requests), tokens: WindowText.decode(tokens))
            }
            if admitted.isSubset(of: stored.keys) { break }
        }
        guard admitted.isSubset(of: stored.keys) else { throw SQLStoreError.corruptValue("limit_windows rows keep vanishing") }
        // One statement, read after the locks are held: the database's clock, the releases (they
        // happened before this transaction, so their slots are free for it) and the live leases of
        // every scope with a concurrency rule. A statement does not see its own CTEs' deletions, so
        // the live count subtracts the released leases that had not expired yet.
        let now: Int64
        do {
            let releasing: SQLQueryString = released.isEmpty
                ? "released (scope, expires_ms) AS (SELECT CAST(NULL AS TEXT), CAST(NULL AS BIGINT) WHERE false)"
                : "released AS (DELETE FROM limit_leases WHERE grant_id IN (\(binds: released)) RETURNING scope, expires_ms)"
            let counted: SQLQueryString = slotted.isEmpty
                ? "held (scope, n) AS (SELECT CAST(NULL AS TEXT), CAST(NULL AS BIGINT) WHERE false)"
                : """
                    held AS (SELECT l.scope, COUNT(*) AS n FROM limit_leases l, c
                        WHERE l.scope IN (\(binds: slotted.sorted())) AND l.expires_ms > c.now GROUP BY l.scope)
                    """
            let rows = try await database.raw(
                """
                WITH c AS (SELECT CAST(FLOOR(EXTRACT(EPOCH FROM clock_timestamp()) * 1000) AS BIGINT) AS now),
                    \(releasing), \(counted),
                    gone AS (SELECT r.scope, COUNT(*) AS n FROM released r, c WHERE r.expires_ms > c.now GROUP BY r.scope)
                SELECT c.now, h.scope, CAST(h.n - COALESCE(g.n, 0) AS BIGINT) AS held
                FROM c LEFT JOIN held h ON true LEFT JOIN gone g ON g.scope = h.scope
                """
            ).all()
            guard let first = rows.first else { throw SQLStoreError.corruptValue("the database's clock") }
            now = try first.decode(column: "now", as: Int64.self)
            for row in rows {
                guard let name = try row.decode(column: "scope", as: String?.self), let key = keysByRow[name] else { continue }
                book.entries[key]?.inFlight = Int(try row.decode(column: "held", as: Int64.self))
            }
        }

        var results: [LimitWriteResult] = []
        var leases: [(grant: Int64, row: String)] = []
        for write in writes {
            switch write {
            case .finish(let grant, let tokens):
                book.finish(grant, tokens: tokens, slots: false)
                results.append(.done)
            case .revoke(let grant):
                book.revoke(grant, slots: false)
                results.append(.done)
            case .admit(let rules, let tokens, let id):
                let outcome = book.admit(rules, tokens: tokens, id: id, now: now)
                if case .success(let grant) = outcome {
                    for scope in grant.scopes where scope.concurrent {
                        leases.append((Int64(bitPattern: id), Self.rowKey(LimitBook.Key(scope: scope.scope, name: scope.name))))
                    }
                }
                results.append(.admitted(outcome))
            }
        }

        var updates: SQLQueryString = ""
        var changed = 0
        for row in rows {
            guard stored[row] != nil, let key = keysByRow[row], let entry = book.entries[key] else { continue }
            let requests = WindowText.encode(entry.requests)
            let tokens = WindowText.encode(entry.tokens)
            if let before = stored[row], before.requests == requests, before.tokens == tokens { continue }
            if changed > 0 { updates += ", " }
            updates += "(\(bind: row), \(bind: requests), \(bind: tokens), \(bind: now))"
            changed += 1
        }
        // The writes in one statement: the windows and the new leases.
        var writes: [SQLQueryString] = []
        if changed > 0 {
            writes.append(
                """
                windows AS (UPDATE limit_windows SET requests = v.requests, tokens = v.tokens,
                    touched_ms = CAST(v.touched AS BIGINT)
                FROM (VALUES \(updates)) AS v (scope, requests, tokens, touched) WHERE limit_windows.scope = v.scope)
                """)
        }
        if !leases.isEmpty {
            var values: SQLQueryString = ""
            for (index, lease) in leases.enumerated() {
                if index > 0 { values += ", " }
                values += "(\(bind: lease.grant), \(bind: lease.row), \(bind: instance), \(bind: now + leaseMillis))"
            }
            writes.append("leases AS (INSERT INTO limit_leases (grant_id, scope, instance, expires_ms) VALUES \(values))")
        }
        if !writes.isEmpty {
            try await database.raw("WITH \(writes.joined(separator: ", ")) SELECT 1").run()
        }
        return results
    }
}

/// A window's buckets as stored: `index:amount` pairs, comma-separated, oldest first ("" when
/// empty). The limit is not stored: it is the rule's, adopted at every admission.
enum WindowText {
    static func encode(_ window: SlidingWindow?) -> String {
        guard let window else { return "" }
        return window.buckets.map { "\($0.index):\($0.amount)" }.joined(separator: ",")
    }

    static func decode(_ text: String) -> SlidingWindow? {
        guard !text.isEmpty else { return nil }
        var buckets: [(index: Int64, amount: Int)] = []
        for pair in text.split(separator: ",") {
            let parts = pair.split(separator: ":")
            guard parts.count == 2, let index = Int64(parts[0]), let amount = Int(parts[1]) else { continue }
            buckets.append((index, amount))
        }
        return SlidingWindow(limit: .max, buckets: buckets)
    }
}
