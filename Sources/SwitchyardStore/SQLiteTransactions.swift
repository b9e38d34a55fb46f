import Foundation
import Logging
import NIOCore
import NIOPosix
import SQLKit
import SQLiteKit
import Synchronization

/// SQLite through a single connection. SQLite allows one writer at a time anyway, so more
/// connections would only add `SQLITE_BUSY` retries; transactions queue on `SerialLock` instead.
final class SQLiteTransactions: TransactionRunner {
    let backend = StoreBackend.sqlite
    private let connection: SQLiteConnection
    private let lock = SerialLock()
    private let logger: Logger
    private let closed = Mutex(false)

    private init(connection: SQLiteConnection, logger: Logger) {
        self.connection = connection
        self.logger = logger
    }

    static func open(path: String, logger: Logger, eventLoopGroup: any EventLoopGroup) async throws -> SQLiteTransactions {
        let storage: SQLiteConnection.Storage = path == ":memory:" ? .memory : .file(path: path)
        if case .file = storage {
            // SQLite creates a missing file but not its directory (e.g. a fresh data volume).
            let directory = URL(fileURLWithPath: path).deletingLastPathComponent().path
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        }
        let connection = try await SQLiteConnection.open(
            storage: storage, threadPool: .singleton, logger: logger, on: eventLoopGroup.any()
        )
        do {
            let database = connection.sql(queryLogLevel: nil)
            // WAL lets readers of other processes (CLI commands) work while the gateway writes;
            // NORMAL sync is durable across crashes of the process, which is what matters here.
            try await database.raw("PRAGMA journal_mode = WAL").run()
            try await database.raw("PRAGMA synchronous = NORMAL").run()
            // Another process holding the write lock makes BEGIN IMMEDIATE wait this long, not fail.
            try await database.raw("PRAGMA busy_timeout = 5000").run()
            // The log is checkpointed on a thread of its own (`SQLiteCheckpointer`); this connection
            // checkpoints only at the cap at which the writer does too.
            try await database.raw("PRAGMA wal_autocheckpoint = \(unsafeRaw: String(SQLiteCheckpointer.defaultInlineFrames))").run()
            try await database.raw("PRAGMA foreign_keys = ON").run()
            // What this connection deletes (uploads) is overwritten, not left in free pages.
            try await database.raw("PRAGMA secure_delete = ON").run()
        } catch {
            try? await connection.close()
            throw error
        }
        return SQLiteTransactions(connection: connection, logger: logger)
    }

    func transaction<R: Sendable>(_ body: @escaping @Sendable (any SQLDatabase) async throws -> R) async throws -> R {
        try await session { database in
            // IMMEDIATE takes the write lock at BEGIN, so two processes never both read and then
            // collide on upgrading to a write lock (which SQLite resolves by failing one of them).
            do {
                return try await inTransaction(database, begin: "BEGIN IMMEDIATE", logger: self.logger, body)
            } catch let abandoned as TransactionAbandoned {
                throw abandoned.cause
            }
        }
    }

    func read<R: Sendable>(_ body: @escaping @Sendable (any SQLDatabase) async throws -> R) async throws -> R {
        try await session(body)
    }

    private func session<R: Sendable>(_ body: @escaping @Sendable (any SQLDatabase) async throws -> R) async throws -> R {
        try await lock.withLock {
            guard !self.closed.withLock({ $0 }) else { throw SQLStoreError.closed }
            return try await body(self.connection.sql(queryLogLevel: nil))
        }
    }

    func shutdown() async {
        do {
            try await lock.withLock {
                let wasClosed = self.closed.withLock { closed in
                    defer { closed = true }
                    return closed
                }
                guard !wasClosed else { return }
                try await self.connection.close()
            }
        } catch {
            logger.debug("closing the SQLite database failed", metadata: ["error": "\(String(reflecting: error))"])
        }
    }
}
