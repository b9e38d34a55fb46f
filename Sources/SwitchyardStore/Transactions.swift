import Logging
import SQLKit

/// Which SQL engine a store talks to: the few places where their SQL differs.
enum StoreBackend: Sendable {
    case sqlite, postgres

    /// Column type of raw bytes (key hashes).
    var bytesType: String {
        switch self {
        case .sqlite: "BLOB"
        case .postgres: "BYTEA"
        }
    }

    /// Appended to a SELECT that reads rows the transaction will change. SQLite needs none: its
    /// transactions take the database's write lock up front (`BEGIN IMMEDIATE`).
    var forUpdate: String {
        switch self {
        case .sqlite: ""
        case .postgres: " FOR UPDATE"
        }
    }
}

/// Runs units of work on one connection each, so a billing operation is one transaction.
protocol TransactionRunner: Sendable {
    var backend: StoreBackend { get }

    /// `body` inside BEGIN … COMMIT on one connection; rolled back when it throws.
    func transaction<R: Sendable>(_ body: @escaping @Sendable (any SQLDatabase) async throws -> R) async throws -> R

    /// `body` on one connection without an explicit transaction: for single-statement reads, which
    /// are atomic on their own and need not pay for BEGIN and COMMIT.
    func read<R: Sendable>(_ body: @escaping @Sendable (any SQLDatabase) async throws -> R) async throws -> R

    /// Closes the connections once the work in flight has finished.
    func shutdown() async
}

/// Wraps `body` in `begin` … COMMIT on the session `database`, which must be a single connection.
func inTransaction<R>(
    _ database: any SQLDatabase, begin: SQLQueryString, logger: Logger,
    _ body: (any SQLDatabase) async throws -> R
) async throws -> R {
    try await database.raw(begin).run()
    let result: R
    do {
        result = try await body(database)
        try await database.raw("COMMIT").run()
    } catch {
        // A failed COMMIT can leave the transaction open (SQLite when busy); Postgres merely warns
        // when there is none, so rolling back is always safe.
        do {
            try await database.raw("ROLLBACK").run()
        } catch let rollbackError {
            logger.debug("rollback failed", metadata: ["error": "\(String(reflecting: rollbackError))"])
            throw TransactionAbandoned(cause: error)
        }
        throw error
    }
    return result
}

/// The transaction failed and could not be rolled back, so its connection must not be reused.
struct TransactionAbandoned: Error {
    var cause: any Error
}
