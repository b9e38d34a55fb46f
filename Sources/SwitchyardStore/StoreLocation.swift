import PostgresKit

/// Where the billing data lives, from the config's `database` string.
enum StoreLocation: Equatable {
    /// A file path, or `:memory:`.
    case sqlite(path: String)
    /// The whole `postgres://user:pass@host:port/db` URL, parsed by PostgresKit.
    case postgres(url: String)

    init(url: String) throws {
        guard let colon = url.firstIndex(of: ":") else { throw SQLStoreError.unsupportedURL(scheme: "") }
        let scheme = url[..<colon].lowercased()
        switch scheme {
        case "sqlite":
            var path = url[url.index(after: colon)...]
            // `sqlite:///var/lib/x.db` names the absolute path /var/lib/x.db, as in other URL forms.
            if path.hasPrefix("//") { path = path.dropFirst(2) }
            guard !path.isEmpty else { throw SQLStoreError.invalidURL("sqlite: needs a file path, as in sqlite:switchyard.db") }
            self = .sqlite(path: String(path))
        case "postgres", "postgresql":
            self = .postgres(url: url)
        default:
            throw SQLStoreError.unsupportedURL(scheme: scheme)
        }
    }
}

public enum SQLStoreError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The database URL's scheme is neither `sqlite:` nor `postgres://` / `postgresql://`.
    case unsupportedURL(scheme: String)
    case invalidURL(String)
    /// Used after `close()`.
    case closed
    /// A value in the database that this version cannot read (written by something else).
    case corruptValue(String)
    case invalidArgument(String)

    public var description: String {
        switch self {
        case .unsupportedURL(let scheme):
            "unsupported database URL scheme '\(scheme)': use sqlite:PATH or postgres://user:pass@host:port/db"
        case .invalidURL(let reason): "invalid database URL: \(reason)"
        case .closed: "the billing store is closed"
        case .corruptValue(let what): "unreadable value in the billing database: \(what)"
        case .invalidArgument(let reason): reason
        }
    }
}

extension SQLPostgresConfiguration {
    /// PostgresKit's parser, with an error that does not repeat the URL (it holds the password).
    static func parsing(_ url: String) throws -> SQLPostgresConfiguration {
        do {
            return try SQLPostgresConfiguration(url: url)
        } catch {
            throw SQLStoreError.invalidURL("expected postgres://user:pass@host:port/db")
        }
    }
}
