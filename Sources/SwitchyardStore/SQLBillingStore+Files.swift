import Foundation
import SQLKit
import SwitchyardCore

extension SQLBillingStore: FileStore {
    static let fileColumns = "id, account_id, filename, purpose, media_type, bytes, created_at, expires_at"

    public func saveFile(_ file: StoredFile, content: [UInt8]) async throws {
        try await runner.transaction { database in
            try await database.raw(
                """
                INSERT INTO files (id, account_id, filename, purpose, media_type, bytes, created_at, expires_at, content)
                VALUES (\(bind: file.id), \(bind: file.accountID), \(bind: file.filename), \(bind: file.purpose),
                    \(bind: file.mediaType), \(bind: file.bytes), \(bind: file.createdAt), \(bind: file.expiresAt),
                    \(bind: Data(content)))
                """
            ).run()
        }
    }

    public func file(id: String, accountID: String, now: Int64) async throws -> StoredFile? {
        try await runner.read { database in
            try await database.raw(
                """
                SELECT \(unsafeRaw: Self.fileColumns) FROM files
                WHERE id = \(bind: id) AND account_id = \(bind: accountID) AND expires_at > \(bind: now)
                """
            ).all().first?.storedFile()
        }
    }

    public func fileContent(id: String, accountID: String, now: Int64) async throws -> (StoredFile, [UInt8])? {
        try await runner.read { database in
            guard
                let row = try await database.raw(
                    """
                    SELECT \(unsafeRaw: Self.fileColumns), content FROM files
                    WHERE id = \(bind: id) AND account_id = \(bind: accountID) AND expires_at > \(bind: now)
                    """
                ).all().first
            else { return nil }
            return (try row.storedFile(), [UInt8](try row.decode(column: "content", as: Data.self)))
        }
    }

    public func files(accountID: String, purpose: String?, now: Int64, limit: Int) async throws -> [StoredFile] {
        var query: SQLQueryString = """
            SELECT \(unsafeRaw: Self.fileColumns) FROM files
            WHERE account_id = \(bind: accountID) AND expires_at > \(bind: now)
            """
        if let purpose { query += " AND purpose = \(bind: purpose)" }
        query += " ORDER BY created_at DESC, id DESC LIMIT \(bind: max(0, limit))"
        let finalQuery = query
        return try await runner.read { database in try await database.raw(finalQuery).all().map { try $0.storedFile() } }
    }

    public func deleteFile(id: String, accountID: String) async throws -> Bool {
        let deleted = try await runner.transaction { database in
            try await database.raw(
                "DELETE FROM files WHERE id = \(bind: id) AND account_id = \(bind: accountID) RETURNING id"
            ).all().count > 0
        }
        if deleted { await forgetDeletedPages() }
        return deleted
    }

    public func deleteExpiredFiles(now: Int64) async throws -> Int {
        let deleted = try await runner.transaction { database in
            try await database.raw("DELETE FROM files WHERE expires_at <= \(bind: now) RETURNING id").all().count
        }
        if deleted > 0 { await forgetDeletedPages() }
        return deleted
    }

    /// On SQLite, deleted uploads are overwritten in the file (`secure_delete`), and the write-ahead
    /// log, which still holds the pages as they were written, is checkpointed and truncated, so no
    /// copy of the bytes outlives the delete on disk. Best effort: a busy reader only delays it.
    private func forgetDeletedPages() async {
        guard runner.backend == .sqlite else { return }
        do {
            try await runner.read { database in try await database.raw("PRAGMA wal_checkpoint(TRUNCATE)").run() }
        } catch {
            logger.debug("checkpointing after deleting uploads failed", metadata: ["error.type": "\(type(of: error))"])
        }
    }
}

extension SQLRow {
    func storedFile() throws -> StoredFile {
        StoredFile(
            id: try value("id"), accountID: try value("account_id"), filename: try value("filename"),
            purpose: try value("purpose"), mediaType: try value("media_type"), bytes: try value("bytes"),
            createdAt: try value("created_at"), expiresAt: try value("expires_at"))
    }
}
