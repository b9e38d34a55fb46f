import Foundation
import Hummingbird
import SwitchyardCore

/// A JSON object sent to the admin API, read field by field with OpenAI-style errors naming the field.
struct AdminBody {
    let object: JSONObject

    static func read(_ request: Request) async throws -> AdminBody {
        let buffer = try await request.body.collect(upTo: 1024 * 1024)
        let bytes = Array(buffer.readableBytesView)
        if bytes.isEmpty { return AdminBody(object: JSONObject()) }
        let value: JSONValue
        do {
            value = try JSONValue.parse(bytes)
        } catch {
            throw GatewayError.invalidJSON(error)
        }
        guard case .object(let object) = value else {
            throw GatewayError(status: 400, message: "The request body must be a JSON object.", type: "invalid_request_error")
        }
        return AdminBody(object: object)
    }

    func has(_ name: String) -> Bool { object[name] != nil }

    /// A 400 naming the first field that is not one of `names` (a key's hash or secret cannot be patched).
    func allowOnly(_ names: Set<String>) throws {
        guard let field = object.members.first(where: { !names.contains($0.key) })?.key else { return }
        throw GatewayError(
            status: 400,
            message: "Unrecognized field '\(field)': expected \(names.sorted().joined(separator: ", ")).",
            type: "invalid_request_error", param: field, code: "unknown_parameter")
    }

    func string(_ name: String) throws -> String? {
        guard let value = object[name], !value.isNull else { return nil }
        guard let text = value.stringValue else { throw GatewayError.invalidType(name, expected: "a string", got: value) }
        return text
    }

    /// A decimal given as a string ("10.00") or a JSON number (10): its exact text.
    private func decimalText(_ name: String) throws -> String? {
        guard let value = object[name], !value.isNull else { return nil }
        switch value {
        case .string(let text): return text
        case .number(let literal): return literal
        default: throw GatewayError.invalidType(name, expected: "a decimal string", got: value)
        }
    }

    func money(_ name: String) throws -> Money? {
        guard let text = try decimalText(name) else { return nil }
        guard let money = Money(text) else {
            throw GatewayError.invalidValue(name, "Invalid '\(name)': '\(text)' is not an amount with at most 6 decimals.")
        }
        return money
    }

    /// A multiplier such as "0.8", as millionths.
    func multiplier(_ name: String) throws -> Int64? {
        guard let text = try decimalText(name) else { return nil }
        guard let ppm = Decimals.parse(text, places: 6), ppm >= 0 else {
            throw GatewayError.invalidValue(name, "Invalid '\(name)': expected a non-negative decimal such as \"0.8\".")
        }
        return ppm
    }

    func stringList(_ name: String) throws -> [String]? {
        guard let value = object[name], !value.isNull else { return nil }
        let strings = value.arrayValue?.compactMap(\.stringValue)
        guard let strings, strings.count == value.arrayValue?.count else {
            throw GatewayError.invalidType(name, expected: "an array of strings", got: value)
        }
        return strings
    }

    func int(_ name: String) throws -> Int64? {
        guard let value = object[name], !value.isNull else { return nil }
        guard let number = value.intValue else { throw GatewayError.invalidType(name, expected: "an integer", got: value) }
        return Int64(number)
    }

    /// `{"requests_per_minute": 600, "tokens_per_minute": 200000, "concurrent": 10}`, each field optional
    /// (null = not set, so the config's limit applies; `"unlimited"` = no limit, whatever the config
    /// says); positive integers within the config's ranges, and no other field.
    func limits(_ name: String) throws -> LimitsConfig.Caller? {
        guard let value = object[name], !value.isNull else { return nil }
        guard let fields = value.objectValue else { throw GatewayError.invalidType(name, expected: "an object", got: value) }
        var limits = LimitsConfig.Caller()
        for member in fields.members {
            let field = "\(name).\(member.key)"
            guard let range = AdminBody.limitRanges[member.key] else {
                throw GatewayError(
                    status: 400,
                    message: "Unrecognized field '\(field)': limits take requests_per_minute, tokens_per_minute and concurrent.",
                    type: "invalid_request_error", param: field, code: "unknown_parameter")
            }
            if member.value.isNull { continue }
            let number: Int
            if member.value.stringValue == "unlimited" {
                number = LimitsConfig.Caller.unlimited
            } else {
                guard let value = member.value.intValue else {
                    throw GatewayError.invalidType(field, expected: "a positive integer or \"unlimited\"", got: member.value)
                }
                number = value
            }
            guard member.value.stringValue == "unlimited" || range.contains(number) else {
                throw GatewayError.invalidValue(
                    field,
                    "Invalid '\(field)': expected an integer from \(range.lowerBound) to \(range.upperBound), or \"unlimited\".")
            }
            switch member.key {
            case "requests_per_minute": limits.requestsPerMinute = number
            case "tokens_per_minute": limits.tokensPerMinute = number
            default: limits.concurrent = number
            }
        }
        return limits.isEmpty ? nil : limits
    }

    /// The same bounds as the config's `limits:`.
    static let limitRanges: [String: ClosedRange<Int>] = [
        "requests_per_minute": LimitsConfig.Caller.requestsPerMinuteRange,
        "tokens_per_minute": LimitsConfig.Caller.tokensPerMinuteRange, "concurrent": LimitsConfig.Caller.concurrentRange,
    ]

    func status(_ name: String) throws -> Account.Status? {
        guard let text = try string(name) else { return nil }
        guard let status = Account.Status(rawValue: text) else {
            throw GatewayError.invalidValue(name, "Invalid '\(name)': expected active or suspended.")
        }
        return status
    }
}

/// Query parameters shared by the usage listings.
struct UsageQuery {
    var from: Int64?
    var to: Int64?
    var limit: Int
    var cursor: String?

    init(_ request: Request) throws {
        let query = request.uri.queryParameters
        from = try query.get("from").map { try Self.time($0, name: "from") }
        to = try query.get("to").map { try Self.time($0, name: "to") }
        cursor = query.get("cursor")
        if let text = query.get("limit") {
            guard let value = Int(text), (1...1000).contains(value) else {
                throw GatewayError.invalidValue("limit", "Invalid 'limit': expected an integer from 1 to 1000.")
            }
            limit = value
        } else {
            limit = 100
        }
    }

    /// Unix seconds (`1735689600`), a date (`2025-01-01`, UTC midnight) or an ISO 8601 time; as unix ms.
    static func time(_ text: String, name: String) throws -> Int64 {
        if let seconds = Decimals.parse(text, places: 3) { return seconds }
        let formatter = ISO8601DateFormatter()
        for options: ISO8601DateFormatter.Options in [
            [.withInternetDateTime], [.withInternetDateTime, .withFractionalSeconds], [.withFullDate],
        ] {
            formatter.formatOptions = options
            if let date = formatter.date(from: text) { return Int64(date.timeIntervalSince1970 * 1000) }
        }
        throw GatewayError.invalidValue(name, "Invalid '\(name)': expected unix seconds, a date or an ISO 8601 time.")
    }
}
