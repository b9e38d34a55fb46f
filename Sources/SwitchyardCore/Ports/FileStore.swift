/// An upload (`POST /v1/files`) as kept: who owns it, what it is (sniffed from its bytes), and when
/// it goes. Its bytes are kept beside it until then, and nowhere else.
public struct StoredFile: Sendable, Equatable {
    public var id: String
    public var accountID: String
    public var filename: String
    /// `vision` or `user_data`.
    public var purpose: String
    /// The MIME type its bytes say (`image/png`), never its name's.
    public var mediaType: String
    public var bytes: Int
    /// Unix seconds.
    public var createdAt: Int64
    public var expiresAt: Int64

    public init(
        id: String, accountID: String, filename: String, purpose: String, mediaType: String, bytes: Int,
        createdAt: Int64, expiresAt: Int64
    ) {
        self.id = id
        self.accountID = accountID
        self.filename = filename
        self.purpose = purpose
        self.mediaType = mediaType
        self.bytes = bytes
        self.createdAt = createdAt
        self.expiresAt = expiresAt
    }
}

/// Where uploads are kept. Every read and delete is scoped by the owning account: another account's
/// file does not exist for it.
public protocol FileStore: Sendable {
    func saveFile(_ file: StoredFile, content: [UInt8]) async throws
    /// The account's file, if it has one by that id that has not expired at `now` (unix seconds).
    func file(id: String, accountID: String, now: Int64) async throws -> StoredFile?
    func fileContent(id: String, accountID: String, now: Int64) async throws -> (StoredFile, [UInt8])?
    /// The account's files, newest first.
    func files(accountID: String, purpose: String?, now: Int64, limit: Int) async throws -> [StoredFile]
    func deleteFile(id: String, accountID: String) async throws -> Bool
    /// Deletes every file expired at `now`; returns how many.
    func deleteExpiredFiles(now: Int64) async throws -> Int
}
