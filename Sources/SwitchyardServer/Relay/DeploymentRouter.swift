import Hummingbird
import Logging
import Metrics
import SwitchyardCore
import SwitchyardUpstream

/// Where one request goes: the model's deployments by priority and weight, then its fallbacks' (see
/// docs/ROUTING.md). What to try next, and when to give up, is the request's `RequestLifecycle`'s
/// decision; the router performs it — claims deployments from `Cooldowns`, waits the backoff, runs
/// the attempt — and keeps the books: a deployment's repeated failures cool it down for every
/// request of this process.
struct DeploymentRouter: Sendable {
    struct Candidate: Sendable {
        var deployment: ModelConfig.Deployment
        var provider: any Provider
        /// The model the deployment belongs to: the one asked for, or a fallback.
        var model: ModelConfig
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

    init(catalog: Catalog, providers: Providers, config: RoutingConfig, clock: any GatewayClock) {
        self.catalog = catalog
        self.providers = providers
        self.config = config
        self.cooldowns = Cooldowns(
            policy: config.cooldown, deployments: catalog.models.flatMap { $0.deployments.map(\.id) }, clock: clock)
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
                candidates.append(Candidate(deployment: deployment, provider: provider, model: model))
            }
        }
        return candidates
    }

    /// The lifecycle of a request that will try `candidates`.
    func lifecycle(for candidates: [Candidate], model: String, arrivedAt: ContinuousClock.Instant) -> RequestLifecycle {
        RequestLifecycle(
            candidates: candidates.map(\.deployment.id), model: model, policy: .init(config, arrivedAt: arrivedAt))
    }

    /// Tries `candidates` as the ticket's lifecycle says, until one answers or it gives up. What was
    /// tried goes on the ticket (the ledger row) and in the log, never into the response.
    ///
    /// A fallback model serves under its own limits too: before its first attempt `admitFallback`
    /// admits the request under them, and a refusal moves on like a failed attempt that says nothing
    /// about the deployment.
    func serve(
        _ candidates: [Candidate], ticket: BillingTicket, signals: [Signal?], stop: Signal, logger: Logger,
        admitFallback: (ModelConfig) async throws(GatewayError) -> Void,
        exchange makeExchange: (Candidate) -> any RelayAttempt
    ) async throws -> Response {
        var admittedFallbacks: Set<String> = []
        let cooldowns = self.cooldowns
        while true {
            let action = ticket.nextAttempt { index in
                let id = candidates[index].deployment.id
                return cooldowns.claim(id) ? .available : .cooling(until: cooldowns.availableAt(id))
            }
            switch action {
            case .attempt(let index, let pause):
                let candidate = candidates[index]
                if candidate.model.name != candidates[0].model.name, !admittedFallbacks.contains(candidate.model.name) {
                    do {
                        try await admitFallback(candidate.model)
                        admittedFallbacks.insert(candidate.model.name)
                    } catch {
                        let failure = AttemptFailure.fallbackLimited(error)
                        guard case .tryNext = ticket.handle(.attemptFailed(failure)) else { throw error }
                        record(failure, at: candidate, logger: logger)
                        continue
                    }
                }
                let exchange = makeExchange(candidate)
                do {
                    if pause > .zero {
                        try await untilSignalled(signals + [stop]) { try await Task.sleep(for: pause) }
                    }
                } catch {
                    return try await exchange.interrupted(by: error)
                }
                do {
                    let response = try await exchange.run()
                    if let attempts = ticket.attemptsText {
                        logger.info("routed after failed attempts", metadata: ["routing.attempts": "\(attempts)"])
                    }
                    return response
                } catch let retry as Exchange.Retry {
                    record(retry.failure, at: candidate, logger: logger)
                }
            case .fail(let error, let outcome):
                await ticket.settle(outcome)
                if let attempts = ticket.attemptsText {
                    logger.notice("no deployment answered", metadata: ["routing.attempts": "\(attempts)"])
                }
                throw error
            case .none, .tryNext, .finish, .finishStopped, .finishWithError, .abandon:
                // Settled already (or never routed): nothing more to try.
                throw GatewayError.internalError
            }
        }
    }

    /// A failed attempt's books: the deployment's health, the retry and queue counters, the log.
    private func record(_ failure: AttemptFailure, at candidate: Candidate, logger: Logger) {
        let id = candidate.deployment.id
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
    }
}
