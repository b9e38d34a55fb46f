import Hummingbird
import Logging
import Metrics
import SwitchyardCore
import Synchronization
import SwitchyardUpstream

/// Chooses where one request goes and moves it on when a deployment fails before answering: the
/// model's deployments by priority and weight, then its fallbacks' (see docs/ROUTING.md). Only
/// failures before anything reached the client are retried; a deployment's repeated failures cool
/// it down for every request of this process.
struct DeploymentRouter: Sendable {
    struct Candidate: Sendable {
        var deployment: ModelConfig.Deployment
        var provider: any Provider
    }

    let catalog: Catalog
    let providers: Providers
    let config: RoutingConfig
    let cooldowns: Cooldowns
    /// `switchyard_upstream_retries_total` by deployment and reason, made on first use.
    private struct RetryKey: Hashable, Sendable {
        var deployment: String
        var reason: String
    }

    private let retries = MetricFamily<RetryKey, Counter> { key in
        Counter(label: "switchyard_upstream_retries_total", dimensions: [("deployment", key.deployment), ("reason", key.reason)])
    }
    /// By provider.
    private let queueRejections = MetricFamily<String, Counter> { provider in
        Counter(label: "switchyard_upstream_queue_rejections_total", dimensions: [("provider", provider)])
    }

    init(catalog: Catalog, providers: Providers, config: RoutingConfig) {
        self.catalog = catalog
        self.providers = providers
        self.config = config
        self.cooldowns = Cooldowns(
            policy: config.cooldown, deployments: catalog.models.flatMap { $0.deployments.map(\.id) })
    }

    /// The order a request tries: the model's deployments (by priority, then a weighted draw), then
    /// each fallback's that serves the endpoint; a deployment two of them share comes once.
    func candidates(for model: ModelConfig, endpoint: Endpoint) -> [Candidate] {
        var random = SystemRandomNumberGenerator()
        var seen: Set<String> = []
        var candidates: [Candidate] = []
        let models = [model] + model.fallbacks.compactMap { catalog.model(named: $0) }
        for model in models where model.endpoints.contains(endpoint) {
            for deployment in DeploymentOrder.ordered(model.deployments, using: &random) {
                guard let provider = providers[deployment.provider], seen.insert(deployment.id).inserted else { continue }
                candidates.append(Candidate(deployment: deployment, provider: provider))
            }
        }
        return candidates
    }

    /// Tries `candidates` in turn, round after round, until one answers, `max_attempts` is used up,
    /// the deadline passes, or every remaining one is cooling down. What was tried goes on the
    /// ticket (the ledger row) and in the log, never into the response.
    func serve(
        _ candidates: [Candidate], model: String, arrivedAt: ContinuousClock.Instant, ticket: BillingTicket,
        signals: [Signal?], stop: Signal, logger: Logger, exchange makeExchange: (Candidate) -> Exchange
    ) async throws -> Response {
        let deadline = arrivedAt + config.deadline
        var tried: [String] = []
        var lastError: GatewayError?
        var throttled: GatewayError?
        var attempts = 0
        var unclaimable = 0
        var availableAt: ContinuousClock.Instant?
        var index = 0
        while attempts < config.maxAttempts, unclaimable < candidates.count {
            let candidate = candidates[index % candidates.count]
            index += 1
            let id = candidate.deployment.id
            let pause = attempts == 0 ? Duration.zero : backoff(after: attempts)
            if attempts > 0 && ContinuousClock.now + pause >= deadline { break }
            guard cooldowns.claim(id) else {
                unclaimable += 1
                if let at = cooldowns.availableAt(id) { availableAt = min(availableAt ?? at, at) }
                if !tried.contains("\(id):cooling") { tried.append("\(id):cooling") }
                continue
            }
            unclaimable = 0
            let exchange = makeExchange(candidate)
            if pause > .zero {
                do {
                    try await untilSignalled(signals + [stop]) { try await Task.sleep(for: pause) }
                } catch {
                    if stop.hasFired { return try await exchange.respond(.stopped) }
                    throw error
                }
            }
            attempts += 1
            do {
                let opening = try await exchange.open()
                cooldowns.succeeded(id)
                if !tried.isEmpty {
                    tried.append("\(id):ok")
                    logger.info("routed after failed attempts", metadata: ["routing.attempts": "\(tried.joined(separator: ","))"])
                }
                ticket.recordRouting(deployment: id, attempts: tried.isEmpty ? nil : tried.joined(separator: ","))
                return try await exchange.respond(opening)
            } catch {
                guard let failure = AttemptFailure(error, provider: candidate.provider.config.name) else { throw error }
                tried.append("\(id):\(failure.reason)")
                guard failure.retryable else {
                    ticket.recordRouting(deployment: id, attempts: tried.count > 1 ? tried.joined(separator: ",") : nil)
                    throw failure.error
                }
                if failure.countsAgainstDeployment {
                    cooldowns.failed(id, retryAfter: failure.retryAfter)
                }
                if failure.reason == "overloaded" {
                    queueRejections[candidate.provider.config.name].increment()
                }
                retries[RetryKey(deployment: id, reason: failure.reason)].increment()
                logger.notice(
                    "upstream attempt failed before output",
                    metadata: ["routing.deployment": "\(id)", "routing.reason": "\(failure.reason)"])
                lastError = failure.error
                if failure.error.httpStatus == 429 { throttled = throttled ?? failure.error }
            }
        }
        ticket.recordRouting(deployment: nil, attempts: tried.isEmpty ? nil : tried.joined(separator: ","))
        if !tried.isEmpty {
            logger.notice("no deployment answered", metadata: ["routing.attempts": "\(tried.joined(separator: ","))"])
        }
        // An upstream's own 429 (with its retry-after) tells the caller most; else the last failure.
        if let error = throttled ?? lastError { throw error }
        let wait = availableAt.map { BillingTicket.millis($0 - .now) } ?? 1000
        throw GatewayError.noDeploymentAvailable(model, retryAfterSeconds: Int(max(1, (wait + 999) / 1000)))
    }

    /// Exponential backoff with jitter: half the step fixed, half random, so concurrent retries spread out.
    private func backoff(after attempts: Int) -> Duration {
        let step = min(config.maxBackoff, config.backoff * (1 << min(attempts - 1, 16)))
        let half = BillingTicket.millis(step) / 2
        return .milliseconds(half + Int64.random(in: 0...max(half, 0)))
    }
}
