import Foundation
import Hummingbird
import SwitchyardCore

/// `GET …/usage/summary` (requests, tokens and cost per UTC day and model) and `GET /v1/usage/{id}`
/// (one ledger row), for the console's chart and its per-reply figures.
struct UsageReads: Sendable {
    let queries: any LedgerQueries

    func summary(_ request: Request, accountID: String?) async throws -> Response {
        let query = try UsageQuery(request)
        let days = try await queries.usageByDay(accountID: accountID, from: query.from, to: query.to)
        return Relay.json([
            "object": "list",
            "data": .array(
                days.map { day in
                    .object([
                        "day": .string(Self.date(day.day)), "model": .string(day.model), "requests": .int(Int(day.requests)),
                        "prompt_tokens": .int(Int(day.promptTokens)), "completion_tokens": .int(Int(day.completionTokens)),
                        "cost": .string(day.cost.description),
                    ])
                }),
        ])
    }

    func row(_ id: String, accountID: String?) async throws -> Response {
        guard let row = try await queries.ledgerRow(requestID: id, accountID: accountID) else {
            throw GatewayError(
                status: 404, message: "No request with id '\(id)' in this account's ledger.", type: "invalid_request_error",
                param: "id", code: "not_found")
        }
        return Relay.json(BillingJSON.row(row))
    }

    /// `YYYY-MM-DD` of a day number (days since 1970-01-01, UTC).
    static func date(_ day: Int64) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyy-MM-dd"
        return formatter.string(from: Date(timeIntervalSince1970: TimeInterval(day) * 86_400))
    }
}

extension Price {
    /// The price as the catalog shows it: its kind and amounts as decimal strings.
    var json: JSONValue {
        func amount(_ nanos: Int64) -> JSONValue { .string(Decimals.format(nanos, places: 9, minimumPlaces: 2)) }
        func rates(_ table: [String: Int64]) -> JSONValue {
            .object(JSONObject(table.sorted { $0.key < $1.key }.map { .init($0.key, amount($0.value)) }))
        }
        switch self {
        case .free: return .object(["kind": "free"])
        case .tokens(let input, let output):
            return .object(["kind": "tokens", "input_per_1k": amount(input), "output_per_1k": amount(output)])
        case .perSecond(let rate): return .object(["kind": "per_second", "per_second": amount(rate)])
        case .perRequest(let amount0): return .object(["kind": "per_request", "per_request": amount(amount0)])
        case .perImage(let table): return .object(["kind": "image", "per_image": rates(table)])
        case .perMillionCharacters(let rate): return .object(["kind": "characters", "per_1m_characters": amount(rate)])
        case .perAudioSecond(let rate): return .object(["kind": "audio_second", "per_audio_second": amount(rate)])
        case .perAction(let table): return .object(["kind": "action", "per_action": rates(table)])
        }
    }
}

extension JSONValue {
    mutating func setMaxSeconds(_ seconds: Int) {
        guard case .object(var object) = self else { return }
        object["max_seconds"] = .int(seconds)
        self = .object(object)
    }
}
