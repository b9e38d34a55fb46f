import Foundation
import SwitchyardCore

/// How accounts, keys and ledger rows look on the wire (admin API, `/v1/account`, `/v1/usage`).
/// Money is a decimal string, exact; times are unix seconds, as OpenAI's own `created`.
enum BillingJSON {
    static func multiplier(_ ppm: Int64) -> String { Decimals.format(ppm, places: 6, minimumPlaces: 0) }

    static func account(_ account: Account) -> JSONObject {
        [
            "object": "account", "id": .string(account.id), "name": .string(account.name),
            "balance": .string(account.balance.description), "held": .string(account.held.description),
            "available": .string(account.available.description),
            "price_multiplier": .string(multiplier(account.multiplierPPM)), "status": .string(account.status.rawValue),
            "models": models(account.models), "limits": limits(account.limits),
            "created_at": .number(String(account.createdAt)),
        ]
    }

    static func key(_ key: APIKey, secret: String? = nil) -> JSONObject {
        var object: JSONObject = [
            "object": "api_key", "id": .string(key.id), "account_id": .string(key.accountID), "label": .string(key.label),
            "prefix": .string(key.prefix), "models": models(key.models),
            "expires_at": key.expiresAt.map { .number(String($0)) } ?? .null,
            "revoked_at": key.revokedAt.map { .number(String($0)) } ?? .null,
            "limits": limits(key.limits), "created_at": .number(String(key.createdAt)),
        ]
        if let secret { object["key"] = .string(secret) }
        return object
    }

    /// `{"requests_per_minute":600,"tokens_per_minute":null,"concurrent":"unlimited"}`; `null` when
    /// none is set.
    static func limits(_ limits: LimitsConfig.Caller?) -> JSONValue {
        guard let limits else { return .null }
        func number(_ value: Int?) -> JSONValue {
            guard let value else { return .null }
            return value == LimitsConfig.Caller.unlimited ? "unlimited" : .int(value)
        }
        return .object([
            "requests_per_minute": number(limits.requestsPerMinute), "tokens_per_minute": number(limits.tokensPerMinute),
            "concurrent": number(limits.concurrent),
        ])
    }

    static func models(_ list: [String]?) -> JSONValue {
        list.map { .array($0.map(JSONValue.string)) } ?? .null
    }

    static func seconds(_ millis: Int64?) -> JSONValue {
        guard let millis else { return .null }
        return .number(Decimals.format(millis, places: 3, minimumPlaces: 0))
    }

    static func row(_ row: LedgerRow) -> JSONObject {
        let open = row.open
        func optional(_ value: Int64?) -> JSONValue { value.map { .number(String($0)) } ?? .null }
        return [
            "object": "request", "id": .string(open.requestID), "account_id": .string(open.accountID),
            "key_id": .string(open.keyID), "user": open.endUser.map(JSONValue.string) ?? .null,
            "model": .string(open.model), "deployment": .string(open.deployment), "status": .string(row.status),
            "end_reason": row.endReason.map(JSONValue.string) ?? .null,
            "http_status": row.httpStatus.map { .int($0) } ?? .null,
            "usage": .object([
                "prompt_tokens": .int(row.promptTokens), "completion_tokens": .int(row.completionTokens),
                "total_tokens": .int(row.promptTokens + row.completionTokens),
            ]),
            "usage_source": row.usageSource.map(JSONValue.string) ?? .null,
            "cost": .string(row.cost.description), "hold": .string(open.hold.description),
            "started_at": seconds(open.startedAt), "finished_at": seconds(row.finishedAt),
            "timings_ms": .object([
                "queue": optional(row.queueMillis), "load": optional(row.loadMillis),
                "first_token": optional(row.firstTokenMillis), "generation": optional(row.generationMillis),
            ]),
            "attempts": row.attempts.map(JSONValue.string) ?? .null,
            "http_request_id": open.httpRequestID.map(JSONValue.string) ?? .null,
            "api": open.api.map(JSONValue.string) ?? .null,
            "units": row.units.map { .int(Int($0)) } ?? .null, "unit": row.unit.map(JSONValue.string) ?? .null,
        ]
    }

    static let csvHeader =
        "id,started_at,finished_at,account_id,key_id,user,model,deployment,status,end_reason,http_status,"
        + "prompt_tokens,completion_tokens,usage_source,cost,queue_ms,load_ms,first_token_ms,generation_ms,attempts,"
        + "http_request_id,api,units,unit\n"

    static func csvLine(_ row: LedgerRow) -> String {
        let open = row.open
        let fields: [String] = [
            open.requestID, iso(open.startedAt), row.finishedAt.map(iso) ?? "", open.accountID, open.keyID,
            open.endUser ?? "", open.model, open.deployment, row.status, row.endReason ?? "",
            row.httpStatus.map(String.init) ?? "", String(row.promptTokens), String(row.completionTokens),
            row.usageSource ?? "", row.cost.description, row.queueMillis.map(String.init) ?? "",
            row.loadMillis.map(String.init) ?? "", row.firstTokenMillis.map(String.init) ?? "",
            row.generationMillis.map(String.init) ?? "", row.attempts ?? "", open.httpRequestID ?? "",
            open.api ?? "", row.units.map(String.init) ?? "", row.unit ?? "",
        ]
        return fields.map(csvField).joined(separator: ",") + "\n"
    }

    /// RFC 4180 quoting; a leading formula character is neutralised so a spreadsheet never runs a
    /// caller-chosen end-user name as a formula.
    static func csvField(_ value: String) -> String {
        var text = value
        if let first = text.first, "=+-@".contains(first) { text = "'" + text }
        guard text.contains(where: { ",\"\n\r".contains($0) }) else { return text }
        return "\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }

    static func iso(_ millis: Int64) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.string(from: Date(timeIntervalSince1970: Double(millis) / 1000))
    }
}
