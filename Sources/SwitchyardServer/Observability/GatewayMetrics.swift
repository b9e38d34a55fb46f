import Prometheus
import SwitchyardCore

/// The gateway's own Prometheus metrics, served at `GET /metrics` from `registry` (which also holds
/// whatever the rest of the process reports through swift-metrics). Names follow OpenTelemetry's
/// GenAI semantic conventions in their Prometheus form where one exists (docs/OPERATIONS.md maps
/// them); everything else is `switchyard_…`. Every series is made once and cached, so recording costs
/// a dictionary lookup and an atomic update.
public final class GatewayMetrics: Sendable {
    public let registry: PrometheusCollectorRegistry

    struct RequestKey: Hashable, Sendable {
        var model: String
        var status: Int
        var endReason: String
    }

    struct ModelKey: Hashable, Sendable {
        var operation: String
        var model: String
    }

    struct TokenKey: Hashable, Sendable {
        var model: ModelKey
        var type: String
    }

    struct UpstreamErrorKey: Hashable, Sendable {
        var deployment: String
        var type: String
    }

    let inFlight: Gauge
    let openStreams: Gauge
    let activeHolds: Gauge
    let heldAmount: Gauge
    let overhead: DurationHistogram
    let requests: MetricFamily<RequestKey, Counter>
    let duration: MetricFamily<ModelKey, DurationHistogram>
    let timeToFirstToken: MetricFamily<ModelKey, DurationHistogram>
    let timePerOutputToken: MetricFamily<ModelKey, DurationHistogram>
    let tokens: MetricFamily<TokenKey, ValueHistogram>
    let cost: MetricFamily<String, Counter>
    let upstreamErrors: MetricFamily<UpstreamErrorKey, Counter>
    let balanceRefusals: MetricFamily<String, Counter>
    let engines: EngineMetrics

    public init(registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()) {
        self.registry = registry
        inFlight = registry.makeGauge(
            descriptor: .named("switchyard_requests_in_flight", "API requests being handled, streams included (not probes)"))
        openStreams = registry.makeGauge(descriptor: .named("switchyard_open_streams", "Streamed responses still being written"))
        activeHolds = registry.makeGauge(
            descriptor: .named("switchyard_active_holds", "Balance holds of requests not yet settled"))
        heldAmount = registry.makeGauge(
            descriptor: .named("switchyard_held_amount", "Money reserved by active holds, in the operator's currency"))
        overhead = registry.makeDurationHistogram(
            descriptor: .named(
                "switchyard_gateway_overhead_seconds",
                "From a request's arrival until it was sent upstream (read, authenticate, admit, hold)"),
            buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1].map(Duration.seconds))
        requests = MetricFamily { key in
            registry.makeCounter(
                descriptor: .named("switchyard_requests_total", "Inference requests by model, HTTP status and end reason"),
                labels: [("model", key.model), ("status", String(key.status)), ("end_reason", key.endReason)])
        }
        duration = MetricFamily { key in
            registry.makeDurationHistogram(
                descriptor: .named(
                    "gen_ai_server_request_duration_seconds", "gen_ai.server.request.duration: arrival to the last byte"),
                labels: key.labels, buckets: Self.durationBuckets.map(Duration.seconds))
        }
        timeToFirstToken = MetricFamily { key in
            registry.makeDurationHistogram(
                descriptor: .named(
                    "gen_ai_server_time_to_first_token_seconds",
                    "gen_ai.server.time_to_first_token: arrival to the first output relayed (streams)"),
                labels: key.labels, buckets: Self.firstTokenBuckets.map(Duration.seconds))
        }
        timePerOutputToken = MetricFamily { key in
            registry.makeDurationHistogram(
                descriptor: .named(
                    "gen_ai_server_time_per_output_token_seconds",
                    "gen_ai.server.time_per_output_token: between output tokens after the first (streams)"),
                labels: key.labels, buckets: Self.perTokenBuckets.map(Duration.seconds))
        }
        tokens = MetricFamily { key in
            registry.makeValueHistogram(
                descriptor: .named("gen_ai_client_token_usage", "gen_ai.client.token.usage: tokens billed per request"),
                labels: key.model.labels + [("gen_ai_token_type", key.type)], buckets: Self.tokenBuckets)
        }
        cost = MetricFamily { model in
            registry.makeCounter(
                descriptor: .named("switchyard_cost_total", "Money captured from balances, in the operator's currency"),
                labels: [("model", model)])
        }
        upstreamErrors = MetricFamily { key in
            registry.makeCounter(
                descriptor: .named(
                    "switchyard_upstream_errors_total", "Requests that ended on an upstream failure, by deployment"),
                labels: [("deployment", key.deployment), ("error_type", key.type)])
        }
        balanceRefusals = MetricFamily { model in
            registry.makeCounter(
                descriptor: .named(
                    "switchyard_balance_refusals_total", "Requests refused with 402: the balance could not cover the hold"),
                labels: [("model", model)])
        }
        engines = EngineMetrics(registry: registry)
    }

    // OpenTelemetry's recommended bucket boundaries for these instruments.
    static let durationBuckets = [0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92]
    static let firstTokenBuckets = [0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0]
    static let perTokenBuckets = [0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5]
    static let tokenBuckets: [Double] = [1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262_144, 1_048_576, 4_194_304]

    func holdOpened(_ hold: Money) {
        activeHolds.increment()
        heldAmount.increment(by: hold.currency)
    }

    /// Everything a settled request contributes: its hold is released, its tokens, cost and timings
    /// recorded, and an upstream failure counted against the deployment that failed.
    func settled(_ report: SettlementReport, captured: Money?) {
        activeHolds.decrement()
        heldAmount.decrement(by: report.open.hold.currency)
        let model = ModelKey(operation: report.endpoint.operationName, model: report.open.model)
        if let overhead = report.overhead { self.overhead.record(overhead) }
        duration[model].record(report.duration)
        if let firstToken = report.timeToFirstToken { timeToFirstToken[model].record(firstToken) }
        if let perToken = report.timePerOutputToken { timePerOutputToken[model].record(perToken) }
        let settlement = report.settlement
        if settlement.promptTokens > 0 || settlement.completionTokens > 0 {
            tokens[TokenKey(model: model, type: "input")].record(Double(settlement.promptTokens))
            tokens[TokenKey(model: model, type: "output")].record(Double(settlement.completionTokens))
        }
        if let captured, captured > .zero { cost[report.open.model].increment(by: captured.currency) }
        if let type = Self.upstreamErrorType(settlement) {
            upstreamErrors[UpstreamErrorKey(deployment: report.deployment, type: type)].increment()
        }
    }

    /// After admission every failure comes from the upstream: unreachable, timed out, broken (its 5xx
    /// or a cut answer) or refusing the request (its 4xx).
    static func upstreamErrorType(_ settlement: LedgerSettlement) -> String? {
        guard settlement.status == .failed else { return nil }
        switch settlement.endReason.rawValue {
        case "upstream_unreachable": return "unreachable"
        case "upstream_timeout": return "timeout"
        case "upstream_error": return "error"
        default: return (400..<500).contains(settlement.httpStatus) ? "refused" : nil
        }
    }

    /// One finished inference request, refused or served.
    func requestFinished(model: String?, status: Int, endReason: String?) {
        let reason = MetricLabel.endReason(endReason)
        requests[RequestKey(model: model ?? "", status: status, endReason: reason)].increment()
        if reason == "insufficient_quota", let model { balanceRefusals[model].increment() }
    }
}

extension GatewayMetrics.ModelKey {
    var labels: [(String, String)] { [("gen_ai_operation_name", operation), ("gen_ai_request_model", model)] }
}

extension MetricNameDescriptor {
    /// A metric by its full name (the registry's descriptor would otherwise assemble it from parts).
    static func named(_ name: String, _ help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(metricName: name, unitName: "", helpText: help)
    }
}

extension Money {
    /// In whole currency units, for metrics (which are floating point anyway).
    var currency: Double { Double(micros) / 1_000_000 }
}
