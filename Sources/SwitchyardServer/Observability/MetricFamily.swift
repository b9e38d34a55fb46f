import Synchronization
import SwitchyardCore

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
    static func endReason(_ reason: String?) -> String {
        guard let reason, !reason.isEmpty else { return "none" }
        return EndReason(rawValue: reason).metricLabel
    }
}
