import Foundation
import SwitchyardCore

/// An upstream's non-2xx answer, as an attempt sees it before it becomes the caller's error.
struct UpstreamStatus: Error {
    var status: Int
    var body: [UInt8]
    var headers: [(name: String, value: String)]
}

/// Why one attempt at a deployment failed before anything reached the client, and what routing
/// does about it: try the next deployment (retryable), count it against the deployment's health,
/// keep the deployment out for the upstream's `retry-after`.
struct AttemptFailure {
    /// For the ledger's `attempts` and the metrics: `connect_error`, `first_byte_timeout`, `http_503`, …
    var reason: String
    var retryable: Bool
    /// Whether it says something about the deployment's health (an overloaded queue or a refused
    /// request does not).
    var countsAgainstDeployment: Bool
    var retryAfter: Duration?
    /// What the caller gets if this is the last word.
    var error: GatewayError

    /// The longest `retry-after` honoured, so that one odd answer cannot bench a deployment for a day.
    static let maxRetryAfter: Duration = .seconds(600)

    /// `nil` for what is not the upstream's fault: the client left or the request was stopped.
    init?(_ error: any Error, provider: String) {
        switch error {
        case let refusal as UpstreamStatus:
            let status = refusal.status
            reason = "http_\(status)"
            self.error = UpstreamFailure.fromStatus(status, body: refusal.body, headers: refusal.headers, provider: provider)
            // 429, 5xx, and 401/403 (this deployment's credentials) may go better elsewhere; any
            // other 4xx is about the request itself and would fail everywhere.
            retryable = status == 429 || status >= 500 || status == 401 || status == 403 || status < 400
            countsAgainstDeployment = retryable
            retryAfter = refusal.headers.first { $0.name == "retry-after" }.flatMap { Self.seconds($0.value) }
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
        case let failure as GatewayError where failure.code == "upstream_error":
            self.error = failure
            reason = "invalid_response"
            retryable = true
            countsAgainstDeployment = true
        default:
            return nil
        }
    }

    /// `retry-after` in seconds (the HTTP-date form is not used by model servers and is ignored).
    static func seconds(_ text: String) -> Duration? {
        guard let value = Double(text.trimmingCharacters(in: .whitespaces)), value >= 0, value.isFinite else { return nil }
        return min(.milliseconds(Int64(value * 1000)), maxRetryAfter)
    }
}
