import Foundation

/// An upstream's non-2xx answer, as an attempt sees it before it becomes the caller's error.
public struct UpstreamStatus: Error, Sendable {
    public var status: Int
    public var body: [UInt8]
    public var headers: [(name: String, value: String)]

    public init(status: Int, body: [UInt8], headers: [(name: String, value: String)]) {
        self.status = status
        self.body = body
        self.headers = headers
    }
}

/// Why one attempt at a deployment failed before anything reached the client, and what routing
/// does about it: try the next deployment (retryable), count it against the deployment's health,
/// keep the deployment out for the upstream's `retry-after`.
public struct AttemptFailure: Sendable {
    /// For the ledger's `attempts` and the metrics: `connect_error`, `first_byte_timeout`, `http_503`, …
    public var reason: String
    public var retryable: Bool
    /// Whether it says something about the deployment's health (an overloaded queue or a refused
    /// request does not).
    public var countsAgainstDeployment: Bool
    public var retryAfter: Duration?
    /// What the caller gets if this is the last word.
    public var error: GatewayError

    /// The longest `retry-after` honoured, so that one odd answer cannot bench a deployment for a day.
    public static let maxRetryAfter: Duration = .seconds(600)

    public init(reason: String, retryable: Bool, countsAgainstDeployment: Bool, retryAfter: Duration? = nil, error: GatewayError) {
        self.reason = reason
        self.retryable = retryable
        self.countsAgainstDeployment = countsAgainstDeployment
        self.retryAfter = retryAfter
        self.error = error
    }

    /// A fallback model's own limits refused the request: try the next candidate; nothing is wrong
    /// with the deployment.
    public static func fallbackLimited(_ error: GatewayError) -> AttemptFailure {
        AttemptFailure(reason: "rate_limited", retryable: true, countsAgainstDeployment: false, error: error)
    }

    /// `nil` for what is not the upstream's fault: the client left or the request was stopped.
    /// `unixMillis` is now, for a `retry-after` given as an HTTP date.
    public init?(_ error: any Error, provider: String, unixMillis: Int64 = SystemClock().unixMillis) {
        switch error {
        case let refusal as UpstreamStatus:
            let status = refusal.status
            reason = "http_\(status)"
            self.error = UpstreamFailure.fromStatus(status, body: refusal.body, headers: refusal.headers, provider: provider)
            // 429, 5xx, and 401/403 (this deployment's credentials) may go better elsewhere; any
            // other 4xx is about the request itself and would fail everywhere.
            retryable = status == 429 || status >= 500 || status == 401 || status == 403 || status < 400
            countsAgainstDeployment = retryable
            retryAfter = refusal.headers.first { $0.name == "retry-after" }
                .flatMap { Self.retryAfter($0.value, unixMillis: unixMillis) }
        case let upstream as UpstreamError:
            self.error = UpstreamFailure.gatewayError(upstream, provider: provider)
            retryable = true
            countsAgainstDeployment = upstream != .overloaded
            switch upstream {
            case .connectFailed: reason = "connect_error"
            case .timeout(.connect): reason = "connect_timeout"
            case .timeout(.firstByte): reason = "first_byte_timeout"
            case .timeout(.idle): reason = "idle_timeout"
            case .timeout(.total): reason = "total_timeout"
            case .closedEarly: reason = "closed_early"
            case .invalidResponse: reason = "invalid_response"
            case .overloaded: reason = "overloaded"
            }
        case let failure as GatewayError where failure.code == "engine_unavailable":
            // Another deployment may be up; this engine's failure counts against it.
            self.error = failure
            reason = "engine_unavailable"
            retryable = true
            countsAgainstDeployment = true
        case let failure as GatewayError where failure.code == "upstream_error":
            self.error = failure
            reason = "invalid_response"
            retryable = true
            countsAgainstDeployment = true
        default:
            return nil
        }
    }

    /// `retry-after` as delay-seconds (`120`, `1.5`) or as an HTTP date (`Wed, 21 Oct 2026 07:28:00
    /// GMT`, RFC 9110's IMF-fixdate), capped at `maxRetryAfter`; a date in the past is no wait.
    public static func retryAfter(_ text: String, unixMillis: Int64) -> Duration? {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        if let value = Double(trimmed) {
            guard value >= 0, value.isFinite else { return nil }
            return min(.milliseconds(Int64(min(value, 1e9) * 1000)), maxRetryAfter)
        }
        guard let at = httpDateMillis(trimmed) else { return nil }
        return min(.milliseconds(max(0, at - unixMillis)), maxRetryAfter)
    }

    /// IMF-fixdate only (`Sun, 06 Nov 1994 08:49:37 GMT`), the form RFC 9110 says senders must use.
    static func httpDateMillis(_ text: String) -> Int64? {
        let parts = text.split(separator: " ")
        guard parts.count == 6, parts[0].hasSuffix(","), parts[5] == "GMT",
            let day = Int(parts[1]), let year = Int(parts[3]),
            let month = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
                .firstIndex(of: String(parts[2]))
        else { return nil }
        let clock = parts[4].split(separator: ":").compactMap { Int($0) }
        guard clock.count == 3, (1...31).contains(day), (0...23).contains(clock[0]), (0...59).contains(clock[1]),
            (0...60).contains(clock[2])
        else { return nil }
        // Days from the civil date (Howard Hinnant's algorithm), so no calendar object is needed.
        let y = month < 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let m = month + 1
        let doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        let days = era * 146_097 + doe - 719_468
        let seconds = Int64(days) * 86_400 + Int64(clock[0] * 3600 + clock[1] * 60 + clock[2])
        return seconds * 1000
    }
}
