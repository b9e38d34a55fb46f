import Logging
import NIOCore
import PostgresKit
import SQLKit
import ServiceLifecycle
import SwitchyardCore
import Synchronization

/// The `BillingStore` over SQL: one implementation for SQLite (a single file, one gateway) and
/// PostgreSQL (shared by several replicas). Every method runs as one transaction.
///
/// As a `Service` it waits for graceful shutdown and then closes its connections, so register it
/// before the services that use it, its `ledgerWriter` included: ServiceLifecycle shuts services
/// down in reverse order.
public final class SQLBillingStore: BillingStore, Service, Sendable {
    let runner: any TransactionRunner
    let logger: Logger
    /// Holds and settlements, batched under load.
    let commits: GroupCommit<BillingWrite, BillingWriteResult>
    /// On a SQLite file, where holds and settlements are written (see `SQLiteHotPath`).
    let hotPath: SQLiteHotPath?
    /// On PostgreSQL, for the connection the replicas' bus listens on (`sharedState`).
    let postgresConfiguration: SQLPostgresConfiguration?
    /// `close()` runs once; later and concurrent calls wait for it.
    private let closeStarted = Atomic(false)
    /// Holds opened and not yet settled by this process: requests in flight, as far as the ledger
    /// knows. Only a hint for group commit (a request alone writes on its own thread); a drift (a
    /// task's hold settled by a later process) costs at most that shortcut, never a write.
    let openHolds = Atomic(0)
    private let closed = Latch()

    private init(
        runner: any TransactionRunner, hotPath: SQLiteHotPath? = nil, postgres: SQLPostgresConfiguration? = nil,
        logger: Logger
    ) {
        self.runner = runner
        self.hotPath = hotPath
        self.postgresConfiguration = postgres
        self.logger = logger
        let executor: any BillingBatchExecutor = hotPath ?? SQLKitBatchExecutor(runner: runner)
        let writeHere = hotPath.map { hotPath in
            { @Sendable (writes: [BillingWrite]) -> [Result<BillingWriteResult, any Error>] in
                do {
                    return try hotPath.executeHere(writes).map { $0.mapError { $0 } }
                } catch {
                    return writes.map { _ in .failure(error) }
                }
            }
        }
        self.commits = GroupCommit(executor: hotPath?.executor, writeHere: writeHere) { writes in
            await executor.apply(writes, logger: logger)
        }
    }

    /// The ledger writer (holds and settlements), to run in the same `ServiceGroup` after the store
    /// and before the services that bill: on shutdown it drains after they stopped and before the
    /// store closes its connections. Without a group the store writes all the same (see `GroupCommit`).
    public var ledgerWriter: any Service { commits }

    /// Opens the store named by the config's `database` string: `sqlite:PATH` (the file is created
    /// when missing) or `postgres://user:pass@host:port/db` (also `postgresql://`). Postgres
    /// connections are made on first use; call `migrate()` before anything else.
    public static func open(url: String, logger: Logger, eventLoopGroup: any EventLoopGroup) async throws -> SQLBillingStore {
        switch try StoreLocation(url: url) {
        case .sqlite(let path):
            let runner = try await SQLiteTransactions.open(path: path, logger: logger, eventLoopGroup: eventLoopGroup)
            // An in-memory database is private to its connection, so it cannot have a second one.
            guard path != ":memory:" else { return SQLBillingStore(runner: runner, logger: logger) }
            do {
                return SQLBillingStore(runner: runner, hotPath: try SQLiteHotPath(path: path), logger: logger)
            } catch {
                await runner.shutdown()
                throw error
            }
        case .postgres(let url):
            let configuration = try SQLPostgresConfiguration.parsing(url)
            let runner = PostgresTransactions(configuration: configuration, logger: logger, eventLoopGroup: eventLoopGroup)
            return SQLBillingStore(runner: runner, postgres: configuration, logger: logger)
        }
    }

    public func run() async throws {
        // Cancellation ends the wait too; either way the pools must be closed.
        try? await gracefulShutdown()
        await close()
    }

    /// Writes the holds and settlements already queued, waits for the transactions in flight, then
    /// closes the connections. Later calls to the store throw `SQLStoreError.closed`.
    public func close() async {
        guard !closeStarted.exchange(true, ordering: .acquiringAndReleasing) else { return await closed.wait() }
        await commits.finish()
        await hotPath?.close()
        await runner.shutdown()
        closed.open()
    }

    public func migrate() async throws {
        try await Migrations.migrate(runner, logger: logger)
    }

    // MARK: settings

    public func setting(_ name: String) async throws -> String? {
        try await runner.read { database in
            try await database.raw("SELECT value FROM settings WHERE name = \(bind: name)").all()
                .first?.value("value", String.self)
        }
    }

    public func setSetting(_ name: String, _ value: String) async throws {
        try await runner.transaction { database in
            try await database.raw(
                """
                INSERT INTO settings (name, value) VALUES (\(bind: name), \(bind: value))
                ON CONFLICT (name) DO UPDATE SET value = excluded.value
                """
            ).run()
        }
    }
}
