import Foundation
import SQLKit
import SwitchyardCore

/// Column lists and row → record conversions. Queries that join select columns as `prefix` + name.
enum Columns {
    static let account = [
        "id", "name", "balance_micros", "held_micros", "multiplier_ppm", "status", "models", "created_at", "limits",
    ]
    static let key = [
        "id", "account_id", "hash", "prefix", "label", "models", "expires_at", "revoked_at", "created_at", "limits",
    ]
    static let ledger = [
        "request_id", "account_id", "key_id", "end_user", "model", "deployment", "instance", "hold_micros", "status",
        "end_reason", "http_status", "prompt_tokens", "completion_tokens", "usage_source", "cost_micros", "queue_ms",
        "load_ms", "first_token_ms", "generation_ms", "started_at", "finished_at", "attempts", "http_request_id",
        "api", "units", "unit",
    ]

    /// `a.id AS a_id, a.name AS a_name, …`, or plain `id, name, …` without a table.
    static func list(_ names: [String], table: String? = nil, prefix: String = "") -> String {
        names.map { name in
            guard let table else { return name }
            return "\(table).\(name) AS \(prefix)\(name)"
        }.joined(separator: ", ")
    }
}

extension SQLRow {
    func value<T: Decodable>(_ column: String, _ type: T.Type = T.self) throws -> T {
        try decode(column: column, as: T.self)
    }

    func optional<T: Decodable>(_ column: String, _ type: T.Type = T.self) throws -> T? {
        try decodeNil(column: column) ? nil : decode(column: column, as: T.self)
    }

    func account(prefix: String = "") throws -> Account {
        let statusText = try value(prefix + "status", String.self)
        guard let status = Account.Status(rawValue: statusText) else {
            throw SQLStoreError.corruptValue("account status '\(statusText)'")
        }
        return Account(
            id: try value(prefix + "id"),
            name: try value(prefix + "name"),
            balance: Money(micros: try value(prefix + "balance_micros")),
            held: Money(micros: try value(prefix + "held_micros")),
            multiplierPPM: try value(prefix + "multiplier_ppm"),
            status: status,
            models: try ModelList.decode(optional(prefix + "models")),
            createdAt: try value(prefix + "created_at"),
            limits: try StoredLimits.decode(optional(prefix + "limits"))
        )
    }

    func apiKey(prefix: String = "") throws -> APIKey {
        APIKey(
            id: try value(prefix + "id"),
            accountID: try value(prefix + "account_id"),
            hash: [UInt8](try value(prefix + "hash", Data.self)),
            prefix: try value(prefix + "prefix"),
            label: try value(prefix + "label"),
            models: try ModelList.decode(optional(prefix + "models")),
            expiresAt: try optional(prefix + "expires_at"),
            revokedAt: try optional(prefix + "revoked_at"),
            createdAt: try value(prefix + "created_at"),
            limits: try StoredLimits.decode(optional(prefix + "limits"))
        )
    }

    func ledgerRow() throws -> LedgerRow {
        let open = LedgerOpen(
            requestID: try value("request_id"),
            accountID: try value("account_id"),
            keyID: try value("key_id"),
            endUser: try optional("end_user"),
            model: try value("model"),
            deployment: try value("deployment"),
            hold: Money(micros: try value("hold_micros")),
            instance: try value("instance"),
            startedAt: try value("started_at"),
            httpRequestID: try optional("http_request_id"),
            api: try optional("api")
        )
        return LedgerRow(
            open: open,
            status: try value("status"),
            endReason: try optional("end_reason"),
            httpStatus: try optional("http_status"),
            promptTokens: try value("prompt_tokens"),
            completionTokens: try value("completion_tokens"),
            usageSource: try optional("usage_source"),
            cost: Money(micros: try value("cost_micros")),
            queueMillis: try optional("queue_ms"),
            loadMillis: try optional("load_ms"),
            firstTokenMillis: try optional("first_token_ms"),
            generationMillis: try optional("generation_ms"),
            finishedAt: try optional("finished_at"),
            attempts: try optional("attempts"),
            units: try optional("units"),
            unit: try optional("unit")
        )
    }
}

/// Allow-lists of models are stored as JSON array text (`["qwen","yi-34b"]`); NULL means all.
enum ModelList {
    static func encode(_ models: [String]?) throws -> String? {
        guard let models else { return nil }
        return String(decoding: try JSONEncoder().encode(models), as: UTF8.self)
    }

    static func decode(_ text: String?) throws -> [String]? {
        guard let text else { return nil }
        do {
            return try JSONDecoder().decode([String].self, from: Data(text.utf8))
        } catch {
            throw SQLStoreError.corruptValue("model list \(text)")
        }
    }
}

/// An account's or key's own limits are stored as a JSON object
/// (`{"concurrent":10,"requests_per_minute":600}`, fields absent when not set); NULL means none set.
enum StoredLimits {
    private struct Wire: Codable {
        var requests_per_minute: Int?
        var tokens_per_minute: Int?
        var concurrent: Int?
    }

    /// NULL for no limits and for limits with no field set, so that "not set" has one form.
    static func encode(_ limits: LimitsConfig.Caller?) throws -> String? {
        guard let limits, !limits.isEmpty else { return nil }
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        let wire = Wire(
            requests_per_minute: limits.requestsPerMinute, tokens_per_minute: limits.tokensPerMinute,
            concurrent: limits.concurrent)
        return String(decoding: try encoder.encode(wire), as: UTF8.self)
    }

    static func decode(_ text: String?) throws -> LimitsConfig.Caller? {
        guard let text else { return nil }
        do {
            let wire = try JSONDecoder().decode(Wire.self, from: Data(text.utf8))
            let limits = LimitsConfig.Caller(
                requestsPerMinute: wire.requests_per_minute, tokensPerMinute: wire.tokens_per_minute,
                concurrent: wire.concurrent)
            return limits.isEmpty ? nil : limits
        } catch {
            throw SQLStoreError.corruptValue("limits \(text)")
        }
    }
}
