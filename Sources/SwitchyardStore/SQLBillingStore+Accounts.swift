import Foundation
import SQLKit
import SwitchyardCore

extension SQLBillingStore {
    /// `held` starts at zero whatever the record says: only `openHold` may reserve money, or the
    /// holds would no longer add up to the running ledger rows that release them.
    public func createAccount(_ account: Account) async throws {
        let models = try ModelList.encode(account.models)
        let limits = try StoredLimits.encode(account.limits)
        let inserted = try await runner.transaction { database in
            try await database.raw(
                """
                INSERT INTO accounts (id, name, balance_micros, held_micros, multiplier_ppm, status, models, created_at, limits)
                VALUES (\(bind: account.id), \(bind: account.name), \(bind: account.balance.micros), 0,
                    \(bind: account.multiplierPPM), \(bind: account.status.rawValue), \(bind: models), \(bind: account.createdAt),
                    \(bind: limits))
                ON CONFLICT (id) DO NOTHING
                RETURNING id
                """
            ).all()
        }
        guard !inserted.isEmpty else { throw BillingStoreError.conflict("account \(account.id) exists") }
    }

    public func account(id: String) async throws -> Account? {
        try await runner.read { database in
            try await database.raw(
                "SELECT \(unsafeRaw: Columns.list(Columns.account)) FROM accounts WHERE id = \(bind: id)"
            ).all().first?.account()
        }
    }

    public func accounts(limit: Int, after: String?) async throws -> [Account] {
        var query: SQLQueryString = "SELECT \(unsafeRaw: Columns.list(Columns.account)) FROM accounts"
        if let after { query += " WHERE id > \(bind: after)" }
        query += " ORDER BY id LIMIT \(bind: max(limit, 0))"
        let finalQuery = query
        return try await runner.read { database in
            try await database.raw(finalQuery).all().map { try $0.account() }
        }
    }

    public func updateAccount(id: String, _ patch: AccountPatch) async throws -> Account? {
        var assignments: [SQLQueryString] = []
        if let name = patch.name { assignments.append("name = \(bind: name)") }
        if let multiplier = patch.multiplierPPM { assignments.append("multiplier_ppm = \(bind: multiplier)") }
        if let status = patch.status { assignments.append("status = \(bind: status.rawValue)") }
        if let models = patch.models { assignments.append("models = \(bind: try ModelList.encode(models))") }
        if let limits = patch.limits { assignments.append("limits = \(bind: try StoredLimits.encode(limits))") }
        guard !assignments.isEmpty else { return try await account(id: id) }
        let query: SQLQueryString = """
            UPDATE accounts SET \(assignments.joined(separator: ", ")) WHERE id = \(bind: id)
            RETURNING \(unsafeRaw: Columns.list(Columns.account))
            """
        let backend = runner.backend
        return try await runner.transaction { database in
            let account = try await database.raw(query).all().first?.account()
            if account != nil { try await ReplicaWire.notify(.forgetAccount(id: id), backend: backend, in: database) }
            return account
        }
    }

    // MARK: keys

    public func createKey(_ key: APIKey) async throws {
        let models = try ModelList.encode(key.models)
        let limits = try StoredLimits.encode(key.limits)
        try await runner.transaction { database in
            let account = try await database.raw("SELECT id FROM accounts WHERE id = \(bind: key.accountID)").all()
            guard !account.isEmpty else { throw BillingStoreError.notFound("account \(key.accountID)") }
            let inserted = try await database.raw(
                """
                INSERT INTO api_keys (id, account_id, hash, prefix, label, models, expires_at, revoked_at, created_at, limits)
                VALUES (\(bind: key.id), \(bind: key.accountID), \(bind: Data(key.hash)), \(bind: key.prefix),
                    \(bind: key.label), \(bind: models), \(bind: key.expiresAt), \(bind: key.revokedAt), \(bind: key.createdAt),
                    \(bind: limits))
                ON CONFLICT DO NOTHING
                RETURNING id
                """
            ).all()
            // The id or the hash is taken; which one is not worth a second query.
            guard !inserted.isEmpty else { throw BillingStoreError.conflict("key \(key.id) or its hash exists") }
        }
    }

    public func key(hash: [UInt8]) async throws -> (key: APIKey, account: Account)? {
        let columns = Columns.list(Columns.key, table: "k", prefix: "k_") + ", "
            + Columns.list(Columns.account, table: "a", prefix: "a_")
        let found = try await runner.read { database in
            try await database.raw(
                """
                SELECT \(unsafeRaw: columns) FROM api_keys k JOIN accounts a ON a.id = k.account_id
                WHERE k.hash = \(bind: Data(hash))
                """
            ).all().first.map { row in try KeyAndAccount(key: row.apiKey(prefix: "k_"), account: row.account(prefix: "a_")) }
        }
        return found.map { ($0.key, $0.account) }
    }

    public func keys(accountID: String) async throws -> [APIKey] {
        try await runner.read { database in
            try await database.raw(
                """
                SELECT \(unsafeRaw: Columns.list(Columns.key)) FROM api_keys WHERE account_id = \(bind: accountID)
                ORDER BY created_at, id
                """
            ).all().map { try $0.apiKey() }
        }
    }

    public func updateKey(id: String, _ patch: KeyPatch) async throws -> APIKey? {
        var assignments: [SQLQueryString] = []
        if let label = patch.label { assignments.append("label = \(bind: label)") }
        if let models = patch.models { assignments.append("models = \(bind: try ModelList.encode(models))") }
        if let expiresAt = patch.expiresAt { assignments.append("expires_at = \(bind: expiresAt)") }
        if let limits = patch.limits { assignments.append("limits = \(bind: try StoredLimits.encode(limits))") }
        guard !assignments.isEmpty else {
            return try await runner.read { database in
                try await database.raw(
                    "SELECT \(unsafeRaw: Columns.list(Columns.key)) FROM api_keys WHERE id = \(bind: id)"
                ).all().first?.apiKey()
            }
        }
        let query: SQLQueryString = """
            UPDATE api_keys SET \(assignments.joined(separator: ", ")) WHERE id = \(bind: id)
            RETURNING \(unsafeRaw: Columns.list(Columns.key))
            """
        let backend = runner.backend
        return try await runner.transaction { database in
            let key = try await database.raw(query).all().first?.apiKey()
            if key != nil { try await ReplicaWire.notify(.forgetKey(id: id), backend: backend, in: database) }
            return key
        }
    }

    /// A key revoked before keeps its first revocation time.
    public func revokeKey(id: String, at: Int64) async throws -> Bool {
        let backend = runner.backend
        return try await runner.transaction { database in
            let revoked = try await !database.raw(
                "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, \(bind: at)) WHERE id = \(bind: id) RETURNING id"
            ).all().isEmpty
            // Delivered to every replica when this commits, so none serves the key from its cache.
            if revoked { try await ReplicaWire.notify(.forgetKey(id: id), backend: backend, in: database) }
            return revoked
        }
    }
}

/// A named pair, so the result of the lookup crosses the session boundary as one Sendable value.
private struct KeyAndAccount: Sendable {
    var key: APIKey
    var account: Account
}
