import SQLKit
import SwitchyardCore

/// How `ReplicaEvent`s travel between replicas: a small JSON payload on one PostgreSQL NOTIFY channel.
/// Payloads carry ids (requests, accounts, end users, keys' ids, deployments), never content or keys.
enum ReplicaWire {
    static let channel = "switchyard_replicas"

    /// `from` names the replica that sent it ("" when the store sent it on a change: every replica,
    /// the sender included, applies it).
    static func encode(_ event: ReplicaEvent, from: String) -> String {
        var object: JSONObject = ["from": .string(from)]
        switch event {
        case .stopRequest(let id, let accountID):
            object["e"] = "stop"
            object["id"] = .string(id)
            object["account"] = .string(accountID)
        case .stopEndUser(let accountID, let endUser):
            object["e"] = "stop_user"
            object["account"] = .string(accountID)
            object["user"] = .string(endUser)
        case .forgetKey(let id):
            object["e"] = "key"
            object["id"] = .string(id)
        case .forgetAccount(let id):
            object["e"] = "account"
            object["id"] = .string(id)
        case .cooldown(let deployment, let millis):
            object["e"] = "cooldown"
            object["id"] = .string(deployment)
            object["ms"] = .int(Int(millis))
        case .resynchronized:
            object["e"] = "resync"
        }
        return JSONValue.object(object).serializedString()
    }

    /// The event and its sender, or nil for a payload this version does not know.
    static func decode(_ payload: String) -> (event: ReplicaEvent, from: String)? {
        guard let object = (try? JSONValue.parse(payload))?.objectValue, let kind = object["e"]?.stringValue else {
            return nil
        }
        let from = object["from"]?.stringValue ?? ""
        let id = object["id"]?.stringValue
        let account = object["account"]?.stringValue
        let event: ReplicaEvent
        switch kind {
        case "stop":
            guard let id, let account else { return nil }
            event = .stopRequest(id: id, accountID: account)
        case "stop_user":
            guard let account, let user = object["user"]?.stringValue else { return nil }
            event = .stopEndUser(accountID: account, endUser: user)
        case "key":
            guard let id else { return nil }
            event = .forgetKey(id: id)
        case "account":
            guard let id else { return nil }
            event = .forgetAccount(id: id)
        case "cooldown":
            guard let id, let millis = object["ms"]?.intValue else { return nil }
            event = .cooldown(deployment: id, millis: Int64(millis))
        default:
            return nil
        }
        return (event, from)
    }

    /// Inside a store transaction: the event goes out when (and only if) it commits. Nothing on
    /// SQLite, where one process is all there is.
    static func notify(_ event: ReplicaEvent, from: String = "", backend: StoreBackend, in database: any SQLDatabase)
        async throws
    {
        guard backend == .postgres else { return }
        try await database.raw("SELECT pg_notify(\(bind: channel), \(bind: encode(event, from: from)))").run()
    }

    /// The database's clock in unix milliseconds, read when the statement runs (not when the
    /// transaction began): every replica's limits and leases are timed by this one clock.
    static func databaseMillis(in database: any SQLDatabase) async throws -> Int64 {
        guard let row = try await database.raw(
            "SELECT CAST(FLOOR(EXTRACT(EPOCH FROM clock_timestamp()) * 1000) AS BIGINT) AS now"
        ).all().first else { throw SQLStoreError.corruptValue("the database's clock") }
        return try row.decode(column: "now", as: Int64.self)
    }
}
