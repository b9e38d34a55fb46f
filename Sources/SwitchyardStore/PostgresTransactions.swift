import Logging
import NIOCore
import NIOPosix
import PostgresKit
import SQLKit
import SwitchyardCore

/// PostgreSQL through a small connection pool. Each unit of work borrows one connection for its
/// whole duration; READ COMMITTED suffices because every balance change is a row-locking UPDATE
/// (or a `SELECT … FOR UPDATE`) that re-checks its condition after waiting for the lock.
///
/// `@unchecked`: AsyncKit's pool guards its state with a lock but predates Sendable annotations.
final class PostgresTransactions: TransactionRunner, @unchecked Sendable {
    /// Per event loop; on a two-core machine that makes four, plenty for short transactions.
    static let connectionsPerEventLoop = 2

    let backend = StoreBackend.postgres
    private let pool: EventLoopGroupConnectionPool<PostgresConnectionSource>
    private let logger: Logger

    init(configuration: SQLPostgresConfiguration, logger: Logger, eventLoopGroup: any EventLoopGroup) {
        self.pool = EventLoopGroupConnectionPool(
            source: PostgresConnectionSource(sqlConfiguration: configuration),
            maxConnectionsPerEventLoop: Self.connectionsPerEventLoop,
            requestTimeout: .seconds(30),
            logger: logger,
            on: eventLoopGroup
        )
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
    private func connection<R: Sendable>(_ body: @escaping @Sendable (PostgresConnection) async throws -> R) async throws -> R {
        do {
            return try await pool.withConnection(logger: logger) { connection in
                connection.eventLoop.makeFutureWithTask { try await body(connection) }
            }.get()
        } catch ConnectionPoolError.shutdown {
            throw SQLStoreError.closed
        } catch {
            throw Self.unavailable(error) ? BillingStoreError.unavailable : error
        }
    }

    /// Whether an error means the database could not be reached or went away (rather than refusing
    /// a statement): no connection, a connection lost, a pool that waited in vain, a server shutting
    /// down or refusing connections (SQLSTATE classes 08 and 57).
    static func unavailable(_ error: any Error) -> Bool {
        switch error {
        case let error as PSQLError:
            guard error.code == .server else { return error.code != .queryCancelled }
            let state = error.serverInfo?[.sqlState] ?? ""
            return state.hasPrefix("08") || state.hasPrefix("57")
        case is ConnectionPoolTimeoutError, is NIOConnectionError, is ChannelError, is IOError:
            return true
        default:
            return false
        }
    }

    func shutdown() async {
        do {
            try await pool.shutdownAsync()
        } catch ConnectionPoolError.shutdown {
            // Already closed.
        } catch {
            logger.debug("closing the PostgreSQL pool failed", metadata: ["error": "\(String(reflecting: error))"])
        }
    }
}
