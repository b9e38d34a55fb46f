import VaporCSQLite

/// A synchronous SQLite connection on SQLite's C API (the copy SQLiteNIO links in), with its
/// prepared statements cached. Not thread-safe: `SQLiteHotPath` uses it from one thread only.
///
/// It exists for the two writes every request makes. Through SQLiteNIO each statement is a trip to a
/// thread pool and back through the event loop, and is parsed anew; here a whole batch of writes
/// is one trip, and each statement is parsed once per process.
final class SQLiteDirect {
    enum Value {
        case int(Int64)
        case text(String)
        case null
    }

    struct Failure: Error, CustomStringConvertible {
        var code: Int32
        var message: String
        var description: String { "SQLite error \(code): \(message)" }
    }

    private var handle: OpaquePointer?
    private var statements: [String: OpaquePointer] = [:]

    /// SQLite copies bound text at once (`SQLITE_TRANSIENT`), so the Swift string may go.
    private static let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)

    init(path: String) throws {
        let flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX
        let opened = sqlite_nio_sqlite3_open_v2(path, &handle, flags, nil)
        guard opened == SQLITE_OK else {
            let failure = Failure(code: opened, message: handle.map { String(cString: sqlite_nio_sqlite3_errmsg($0)) } ?? "")
            sqlite_nio_sqlite3_close(handle)
            handle = nil
            throw failure
        }
        // Another connection (the gateway's other one, or a CLI command) holding the write lock makes
        // BEGIN IMMEDIATE wait up to this long rather than fail.
        sqlite_nio_sqlite3_busy_timeout(handle, 5_000)
        do {
            try execute("PRAGMA journal_mode = WAL")
            try execute("PRAGMA synchronous = NORMAL")
            try execute("PRAGMA foreign_keys = ON")
        } catch {
            close()
            throw error
        }
    }

    deinit { close() }

    /// The connection's handle, for the C calls this type does not wrap (checkpoints).
    var rawHandle: OpaquePointer? { handle }

    /// `sqlite3_wal_hook`'s callback: context, connection, database name, frames in the log.
    typealias LogHook = @convention(c) (UnsafeMutableRawPointer?, OpaquePointer?, UnsafePointer<CChar>?, Int32) -> Int32

    /// Called after each commit on this connection; replaces SQLite's automatic checkpoint.
    func setLogHook(context: UnsafeMutableRawPointer?, _ hook: LogHook?) {
        _ = sqlite_nio_sqlite3_wal_hook(handle, hook, context)
    }

    func close() {
        for statement in statements.values { sqlite_nio_sqlite3_finalize(statement) }
        statements.removeAll()
        if let handle { sqlite_nio_sqlite3_close_v2(handle) }
        handle = nil
    }

    /// Runs a statement without results (or ignores them).
    func execute(_ sql: String, _ values: [Value] = []) throws {
        _ = try query(sql, values) { _ in () }
    }

    /// Rows changed by the last INSERT, UPDATE or DELETE.
    var changes: Int32 { sqlite_nio_sqlite3_changes(handle) }

    /// Runs a statement and maps each row; `Row` reads columns by index.
    func query<T>(_ sql: String, _ values: [Value], _ map: (Row) throws -> T) throws -> [T] {
        let statement = try prepared(sql)
        defer {
            sqlite_nio_sqlite3_reset(statement)
            sqlite_nio_sqlite3_clear_bindings(statement)
        }
        for (offset, value) in values.enumerated() {
            let index = Int32(offset + 1)
            let bound: Int32
            switch value {
            case .int(let number): bound = sqlite_nio_sqlite3_bind_int64(statement, index, number)
            case .text(let text): bound = sqlite_nio_sqlite3_bind_text(statement, index, text, -1, Self.transient)
            case .null: bound = sqlite_nio_sqlite3_bind_null(statement, index)
            }
            guard bound == SQLITE_OK else { throw failure(bound) }
        }
        var rows: [T] = []
        while true {
            let stepped = sqlite_nio_sqlite3_step(statement)
            if stepped == SQLITE_DONE { return rows }
            guard stepped == SQLITE_ROW else { throw failure(stepped) }
            rows.append(try map(Row(statement: statement)))
        }
    }

    struct Row {
        fileprivate let statement: OpaquePointer

        func int(_ column: Int32) -> Int64 { sqlite_nio_sqlite3_column_int64(statement, column) }

        func text(_ column: Int32) -> String? {
            guard sqlite_nio_sqlite3_column_type(statement, column) != SQLITE_NULL,
                let bytes = sqlite_nio_sqlite3_column_text(statement, column)
            else { return nil }
            return String(cString: bytes)
        }
    }

    private func prepared(_ sql: String) throws -> OpaquePointer {
        if let statement = statements[sql] { return statement }
        guard handle != nil else { throw Failure(code: SQLITE_MISUSE, message: "the connection is closed") }
        var statement: OpaquePointer?
        let result = sqlite_nio_sqlite3_prepare_v2(handle, sql, -1, &statement, nil)
        guard result == SQLITE_OK, let statement else { throw failure(result) }
        statements[sql] = statement
        return statement
    }

    private func failure(_ code: Int32) -> Failure {
        Failure(code: code, message: handle.map { String(cString: sqlite_nio_sqlite3_errmsg($0)) } ?? "closed")
    }
}
