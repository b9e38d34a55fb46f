/// How a request ended, as the ledger, the metrics and the request log all record it.
public enum EndStatus: String, Sendable, CaseIterable, Equatable {
    /// The upstream finished (or a refusal before any output: see `failed`).
    case completed
    /// The upstream failed, refused or timed out; charged only for what reached the client.
    case failed
    /// Stopped by its caller (`suspend_current_generate`, cancel by id).
    case cancelled
    /// The client went away.
    case clientClosed = "client_closed"
    /// Still running when the drain time after SIGTERM ran out, or found running after a crash.
    case interrupted
}

/// Why a request ended: a generation's own `finish_reason` (`stop`, `length`, `tool_calls`, …), a
/// reason of the gateway's (`cancelled`, `client_closed`, `shutdown`, …) or an error code.
///
/// Upstreams can put any text in a `finish_reason` or an error `code`; only a short token of safe
/// characters is kept (anything else becomes `other`), so no upstream can write its own text into
/// the ledger or the request log, and `metricLabel` maps it onto a closed vocabulary for `/metrics`.
public struct EndReason: RawRepresentable, Sendable, Hashable, CustomStringConvertible {
    public let rawValue: String

    /// Keeps `text` if it is a safe token, else `other`.
    public init(rawValue text: String) {
        let safe = !text.isEmpty && text.utf8.count <= 64
            && text.utf8.allSatisfy { byte in
                (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A)
                    || byte == 0x5F || byte == 0x2D || byte == 0x2E
            }
        rawValue = safe ? text : "other"
    }

    public var description: String { rawValue }

    // How generations finish.
    public static let stop = EndReason(rawValue: "stop")
    public static let length = EndReason(rawValue: "length")
    // How the gateway ends them.
    public static let cancelled = EndReason(rawValue: "cancelled")
    public static let clientClosed = EndReason(rawValue: "client_closed")
    public static let shutdown = EndReason(rawValue: "shutdown")
    /// The request's ticket was dropped on a path that settled nothing (a last resort).
    public static let abandoned = EndReason(rawValue: "abandoned")
    public static let upstreamError = EndReason(rawValue: "upstream_error")
    public static let gatewayRestart = EndReason(rawValue: "gateway_restart")
    /// The replica running it died; another released its hold (several replicas on one database).
    public static let replicaLost = EndReason(rawValue: "replica_lost")
    public static let error = EndReason(rawValue: "error")

    /// End reasons and error codes the gateway knows; anything else an upstream says becomes `other`
    /// as a metric label.
    public static let vocabulary: Set<String> = [
        // how generations finish
        "stop", "length", "tool_calls", "content_filter", "function_call",
        // how the gateway ends them
        "cancelled", "client_closed", "shutdown", "abandoned",
        "upstream_error", "upstream_timeout", "upstream_unreachable", "internal_error",
        "gateway_restart", "replica_lost", "database_unavailable",
        // refusals
        "invalid_api_key", "account_suspended", "model_not_allowed", "insufficient_quota", "model_not_found",
        "missing_required_parameter", "invalid_type", "invalid_value", "unsupported", "request_too_large",
        "unknown_url", "not_found", "conflict", "method_not_allowed", "shutting_down",
        "rate_limit_exceeded", "context_length_exceeded", "upstream_overloaded", "model_unavailable",
    ]

    /// The label `/metrics` uses: the reason if it is in `vocabulary`, else `other`.
    public var metricLabel: String { Self.vocabulary.contains(rawValue) ? rawValue : "other" }
}

/// The settled ending of one request: what the ledger row says and whether it is charged.
public struct RequestOutcome: Sendable, Equatable {
    public var status: EndStatus
    public var reason: EndReason
    /// The HTTP status the client got (200 once a stream or answer began; 499 for a client gone
    /// before anything was sent).
    public var httpStatus: Int
    /// Whether the caller received anything worth paying for (output, or usage the upstream reported).
    public var charge: Bool

    public init(status: EndStatus, reason: EndReason, httpStatus: Int, charge: Bool) {
        self.status = status
        self.reason = reason
        self.httpStatus = httpStatus
        self.charge = charge
    }
}
