import Synchronization

/// The metric objects of one labelled family, made on first use and then reused: a request looks its
/// series up in a small dictionary instead of asking the registry (which takes the registry-wide lock
/// and builds a label key) every time.
final class MetricFamily<Key: Hashable & Sendable, Metric: AnyObject & Sendable>: Sendable {
    private let series = Mutex<[Key: Metric]>([:])
    private let make: @Sendable (Key) -> Metric

    init(_ make: @escaping @Sendable (Key) -> Metric) {
        self.make = make
    }

    subscript(_ key: Key) -> Metric {
        series.withLock { series in
            if let metric = series[key] { return metric }
            let metric = make(key)
            series[key] = metric
            return metric
        }
    }
}

/// Label values that callers or upstreams can influence are mapped onto a closed vocabulary, so that
/// no request can add series without bound (or put its own text into `/metrics`).
enum MetricLabel {
    /// End reasons and error codes the gateway knows; anything else an upstream says becomes `other`.
    static let endReasons: Set<String> = [
        // how generations finish
        "stop", "length", "tool_calls", "content_filter", "function_call",
        // how the gateway ends them
        "cancelled", "client_closed", "shutdown", "abandoned",
        "upstream_error", "upstream_timeout", "upstream_unreachable", "internal_error",
        // refusals
        "invalid_api_key", "account_suspended", "model_not_allowed", "insufficient_quota", "model_not_found",
        "missing_required_parameter", "invalid_type", "invalid_value", "unsupported", "request_too_large",
        "unknown_url", "not_found", "conflict", "method_not_allowed", "shutting_down",
        "rate_limit_exceeded", "context_length_exceeded", "upstream_overloaded", "model_unavailable",
    ]

    static func endReason(_ reason: String?) -> String {
        guard let reason, !reason.isEmpty else { return "none" }
        return endReasons.contains(reason) ? reason : "other"
    }

    /// OpenTelemetry's `gen_ai.operation.name` for an endpoint.
    static func operation(_ endpoint: String) -> String {
        switch endpoint {
        case "chat": "chat"
        case "completions": "text_completion"
        case "embeddings": "embeddings"
        default: endpoint
        }
    }
}
