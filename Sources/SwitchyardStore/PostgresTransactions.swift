import Logging
import NIOCore
import NIOPosix
import PostgresKit
import SQLKit
import SwitchyardCore
import Synchronization

/// PostgreSQL through a small connection pool (PostgresNIO's `PostgresClient`). Each unit of work
/// borrows one connection for its whole duration; READ COMMITTED suffices because every balance
/// change is a row-locking UPDATE (or a `SELECT … FOR UPDATE`) that re-checks its condition after
/// waiting for the lock.
///
/// Why not AsyncKit's `EventLoopGroupConnectionPool` (PostgresKit's default, used here before):
/// when the database goes away and comes back, a waiter it serves from a released (closed)
/// connection can be failed by its own connection attempt and then succeeded again, and the
/// connection handed to the already-failed waiter is dropped unclosed — a leaked server session,
/// a slot the pool counts forever, and in a debug build PostgresNIO's "deinitialized before being
/// closed" assertion (the replica suite's partition test caught it).
///
/// A unit of work runs in a task of its own, so a caller that is cancelled (a client that hung
/// up) never cuts a transaction short, and it waits at most `leaseTimeout` for a connection: while
/// the database is unreachable the pool keeps trying to connect (backing off) and its callers get
/// `BillingStoreError.unavailable` instead of waiting for it.
final class PostgresTransactions: TransactionRunner, Sendable {
    /// Per event loop: on a two-core machine that makes four, plenty for short transactions.
    static let connectionsPerEventLoop = 2
    /// How long a unit of work waits for a connection (PostgresNIO's connect timeout is 10 s too).
    static let leaseTimeout = Duration.seconds(10)

    let backend = StoreBackend.postgres
    private let client: PostgresClient
    private let running: Task<Void, Never>
    private let shut = Atomic(false)
    private let logger: Logger

    init(configuration: SQLPostgresConfiguration, logger: Logger, eventLoopGroup: any EventLoopGroup) {
        var options = PostgresClient.Configuration.Options()
        let eventLoops = Array(eventLoopGroup.makeIterator()).count
        options.maximumConnections = Self.connectionsPerEventLoop * max(eventLoops, 1)
        options.connectTimeout = .seconds(10)
        // Transactions are short and the pool is small: keep what was opened for a while, and let
        // the keep-alive ping find a connection that died while idle.
        options.connectionIdleTimeout = .seconds(300)
        let client = PostgresClient(
            configuration: PostgresClient.Configuration(configuration.coreConfiguration, options: options),
            eventLoopGroup: eventLoopGroup, backgroundLogger: logger)
        self.client = client
        self.running = Task { await client.run() }
        self.logger = logger
    }

    func transaction<R: Sendable>(_ body: @escaping @Sendable (any SQLDatabase) async throws -> R) async throws -> R {
        try await connection { connection in
            do {
                return try await inTransaction(connection.sql(queryLogLevel: nil), begin: "BEGIN", logger: self.logger, body)
            } catch let abandoned as TransactionAbandoned {
                // Back in the pool it would hand the next borrower a half-finished transaction.
                try? await connection.close()
                throw abandoned.cause
            }
        }
    }

    func read<R: Sendable>(_ body: @escaping @Sendable (any SQLDatabase) async throws -> R) async throws -> R {
        try await connection { try await body($0.sql(queryLogLevel: nil)) }
    }

    /// Not `SQLDatabase.withSession`: PostgresKit's pooled database does not override it, so every
    /// statement would take its own connection.
    ///
    /// The work runs in a task of its own, watched by a second: it cancels the wait for a connection
    /// after `leaseTimeout`, and it gives up on work whose connection closed under it. PostgresNIO
    /// never answers a statement written to a connection that had already closed (the write fails
    /// before its handler sees it, and the statement's promise is never completed), and the pool
    /// can hand out a connection that is closing when the database goes away: without the watcher
    /// such a unit of work, and every batch queued behind it, would wait for ever.
    private func connection<R: Sendable>(_ body: @escaping @Sendable (PostgresConnection) async throws -> R) async throws -> R {
        if shut.load(ordering: .acquiring) { throw SQLStoreError.closed }
        let unit = UnitOfWork<R>()
        let client = self.client
        let logger = self.logger
        let result: Result<R, any Error> = await withCheckedContinuation { continuation in
            unit.answer(to: continuation)
            let work = Task {
                do {
                    let value = try await client.withConnection { connection in
                        guard unit.leased(connection) else { throw SQLStoreError.closed }
                        if connection.isClosed { throw BillingStoreError.unavailable }
                        return try await body(connection)
                    }
                    unit.finish(with: .success(value))
                } catch {
                    unit.finish(with: .failure(error))
                }
            }
            // Every second (most units end long before the first tick, and cancel it): no lease
            // after `leaseTimeout`, cancel the wait; a connection seen closed twice in a row, give up.
            unit.watch(Task {
                var waited = Duration.zero
                var closedBefore = false
                while (try? await Task.sleep(for: .seconds(1))) != nil {
                    waited += .seconds(1)
                    if waited >= Self.leaseTimeout, unit.timedOut() { return work.cancel() }
                    let closed = unit.connectionClosed
                    if closed && closedBefore {
                        logger.warning("gave up on a unit of work whose database connection closed under it")
                        return unit.finish(with: .failure(BillingStoreError.unavailable))
                    }
                    closedBefore = closed
                }
            })
        }
        switch result {
        case .success(let value):
            return value
        case .failure(let error):
            if shut.load(ordering: .acquiring) { throw SQLStoreError.closed }
            // No connection in time, or the lease failed (the pool's circuit breaker): unreachable.
            if !unit.wasLeased { throw BillingStoreError.unavailable }
            throw Self.unavailable(error) ? BillingStoreError.unavailable : error
        }
    }

    /// Whether an error means the database could not be reached or went away (rather than refusing
    /// a statement): no connection, a connection lost, a server shutting down or refusing
    /// connections (SQLSTATE classes 08 and 57).
    static func unavailable(_ error: any Error) -> Bool {
        switch error {
        case let error as PSQLError:
            guard error.code == .server else { return error.code != .queryCancelled }
            let state = error.serverInfo?[.sqlState] ?? ""
            return state.hasPrefix("08") || state.hasPrefix("57")
        case is NIOConnectionError, is ChannelError, is IOError:
            return true
        default:
            return false
        }
    }

    func shutdown() async {
        guard !shut.exchange(true, ordering: .acquiringAndReleasing) else { return await running.value }
        // The client closes its connections when its run task is cancelled.
        running.cancel()
        await running.value
    }
}

/// One unit of work's state, shared by its task and its watcher: whether the lease or the lease
/// timeout came first (the work runs only in the first case), the connection it got, and its one
/// answer (the work's result, or the watcher's giving up, whichever is first).
private final class UnitOfWork<R: Sendable>: Sendable {
    private enum Lease { case waiting, leased(PostgresConnection), timedOut }
    private struct State {
        var lease = Lease.waiting
        var continuation: CheckedContinuation<Result<R, any Error>, Never>?
        var early: Result<R, any Error>?
        var watcher: Task<Void, Never>?
        var finished = false
    }
    private let state = Mutex(State())

    func answer(to continuation: CheckedContinuation<Result<R, any Error>, Never>) {
        let early = state.withLock { state -> Result<R, any Error>? in
            if let early = state.early { return early }
            state.continuation = continuation
            return nil
        }
        if let early { continuation.resume(returning: early) }
    }

    func watch(_ watcher: Task<Void, Never>) {
        let finished = state.withLock { state in
            if !state.finished { state.watcher = watcher }
            return state.finished
        }
        if finished { watcher.cancel() }
    }

    /// The connection arrived: true when the work may run.
    func leased(_ connection: PostgresConnection) -> Bool {
        state.withLock { state in
            guard case .waiting = state.lease else { return false }
            state.lease = .leased(connection)
            return true
        }
    }

    /// The wait is over: true when the lease had not come (the work is to be cancelled).
    func timedOut() -> Bool {
        state.withLock { state in
            guard case .waiting = state.lease else { return false }
            state.lease = .timedOut
            return true
        }
    }

    var wasLeased: Bool {
        state.withLock { state in
            if case .leased = state.lease { return true }
            return false
        }
    }

    var connectionClosed: Bool {
        state.withLock { state in
            if case .leased(let connection) = state.lease { return connection.isClosed }
            return false
        }
    }

    /// The first answer wins; later ones are dropped.
    func finish(with result: Result<R, any Error>) {
        let (continuation, watcher) = state.withLock { state -> (CheckedContinuation<Result<R, any Error>, Never>?, Task<Void, Never>?) in
            guard !state.finished else { return (nil, nil) }
            state.finished = true
            defer { state.continuation = nil; state.watcher = nil }
            if state.continuation == nil { state.early = result }
            return (state.continuation, state.watcher)
        }
        watcher?.cancel()
        continuation?.resume(returning: result)
    }
}

extension PostgresClient.Configuration {
    /// The client configuration for what `SQLPostgresConfiguration(url:)` parsed: the same server,
    /// credentials, database and TLS mode (`sslmode`).
    init(_ connection: PostgresConnection.Configuration, options: Options) {
        let tls: TLS =
            if !connection.tls.isAllowed { .disable }
            else if connection.tls.isEnforced { .require(.makeClientConfiguration()) }
            else { .prefer(.makeClientConfiguration()) }
        if let path = connection.unixSocketPath {
            self.init(unixSocketPath: path, username: connection.username, password: connection.password,
                      database: connection.database)
        } else {
            self.init(host: connection.host ?? "127.0.0.1", port: connection.port ?? 5432, username: connection.username,
                      password: connection.password, database: connection.database, tls: tls)
        }
        self.options = options
    }
}
