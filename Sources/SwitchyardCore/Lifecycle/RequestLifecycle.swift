/// The life of one admitted request, from routing to settlement, as a pure state machine: the relay
/// reports what happened (an attempt failed, the upstream ended, the client left, a stop arrived) and
/// performs the action it gets back. Every way a request can end — and so how it is recorded and
/// charged — is decided here and nowhere else; the relay only writes, cancels and settles.
///
///     routing ──attempt──▶ attempting ──committed──▶ relaying
///        ▲                    │  │                      │
///        └──retryable failure─┘  └─────────┬────────────┘
///                                          ▼
///                                       settled(outcome)
///
/// `attempting` is everything before the client got a byte: the upstream was asked, and for a whole
/// answer (or one assembled from a stream) until it is complete, so a failure there may still move
/// to another deployment. `relaying` begins when a stream's 200 and first event go to the client;
/// from then on nothing is retried and every ending is written into the stream. Once `settled`,
/// every later event is ignored: a request settles exactly once.
public struct RequestLifecycle: Sendable {
    public enum StopCause: Sendable, Equatable {
        /// `suspend_current_generate` or cancel by id.
        case caller
        /// The drain time after SIGTERM ran out.
        case shutdown
    }

    public enum State: Sendable, Equatable {
        /// Choosing a deployment, or waiting to try the next one.
        case routing
        /// An attempt at candidate `index` is under way; nothing has reached the client.
        case attempting(index: Int)
        /// The client's stream has begun; no more retries.
        case relaying(index: Int)
        case settled(RequestOutcome)
    }

    public enum Event: Sendable {
        /// The attempt's upstream answered (a whole body, or a stream's first event): it is healthy.
        case upstreamAnswered
        /// The client's stream begins: its 200 and the first event are being sent.
        case committed
        /// The attempt failed before anything reached the client.
        case attemptFailed(AttemptFailure)
        /// The upstream finished: a whole answer, or a stream's end. `charge`: the caller received
        /// output, or the upstream reported usage.
        case upstreamEnded(finishReason: String?, charge: Bool)
        /// The upstream (of `provider`) sent an error event.
        case upstreamErrorEvent(JSONObject, provider: String, charge: Bool)
        /// The upstream broke (or timed out) after the client's stream began.
        case upstreamFailed(GatewayError, charge: Bool)
        case clientGone(charge: Bool)
        case stop(StopCause, charge: Bool)
        /// The request was dropped on a path that settled nothing: a last resort, so no hold is stranded.
        case abandoned(charge: Bool)
    }

    public enum Action: Sendable {
        /// Nothing to do; wait for the next event.
        case none
        /// Try candidate `index` after `pause` (zero for the first attempt).
        case attempt(index: Int, pause: Duration)
        /// The attempt failed and another may follow: ask `nextAttempt`.
        case tryNext(AttemptFailure)
        /// Nothing was sent: answer with this HTTP error. Settle.
        case fail(GatewayError, RequestOutcome)
        /// End the answer cleanly (`[DONE]`, or the whole answer). Settle.
        case finish(RequestOutcome)
        /// Cancel the upstream; end with the stopped answer (finish chunk, usage, `[DONE]`; or the
        /// cancelled object). Settle.
        case finishStopped(RequestOutcome)
        /// Cancel the upstream; end the stream with this error event, never a clean `[DONE]`. Settle.
        case finishWithError(JSONObject, RequestOutcome)
        /// Cancel the upstream and write nothing more (the client is gone, or nobody will write). Settle.
        case abandon(RequestOutcome)

        /// The ending this action settles, if it does.
        public var outcome: RequestOutcome? {
            switch self {
            case .none, .attempt, .tryNext: nil
            case .fail(_, let outcome), .finish(let outcome), .finishStopped(let outcome),
                .finishWithError(_, let outcome), .abandon(let outcome):
                outcome
            }
        }
    }

    /// Whether a candidate may be tried now; `claim` in `nextAttempt` makes a half-open one's probe.
    public enum Availability: Sendable, Equatable {
        case available
        /// Cooling down, available again at that instant (if known).
        case cooling(until: ContinuousClock.Instant?)
    }

    /// How attempts are spent (from `routing:`).
    public struct RetryPolicy: Sendable, Equatable {
        public var maxAttempts: Int
        public var backoff: Duration
        public var maxBackoff: Duration
        /// From the request's arrival: no attempt starts, and no backoff waits, past it.
        public var deadline: ContinuousClock.Instant

        public init(maxAttempts: Int, backoff: Duration, maxBackoff: Duration, deadline: ContinuousClock.Instant) {
            self.maxAttempts = maxAttempts
            self.backoff = backoff
            self.maxBackoff = maxBackoff
            self.deadline = deadline
        }

        public init(_ config: RoutingConfig, arrivedAt: ContinuousClock.Instant) {
            self.init(
                maxAttempts: config.maxAttempts, backoff: config.backoff, maxBackoff: config.maxBackoff,
                deadline: arrivedAt + config.deadline)
        }

        /// Exponential backoff with jitter: half the step fixed, half random, so concurrent retries
        /// spread out.
        public func pause(after attempts: Int, using random: inout some RandomNumberGenerator) -> Duration {
            guard attempts > 0 else { return .zero }
            let step = min(maxBackoff, backoff * (1 << min(attempts - 1, 16)))
            let half = step.millis / 2
            return .milliseconds(half + Int64.random(in: 0...max(half, 0), using: &random))
        }
    }

    public private(set) var state: State = .routing
    /// The deployment ids to try, in order (the model's, then its fallbacks').
    public let candidates: [String]
    public let model: String
    public let policy: RetryPolicy

    private var attempts = 0
    private var next = 0
    private var unclaimable = 0
    private var tried: [String] = []
    private var lastError: GatewayError?
    private var throttled: GatewayError?
    private var availableAt: ContinuousClock.Instant?
    /// The deployment that answered (or last failed).
    public private(set) var deployment: String?

    public init(candidates: [String], model: String, policy: RetryPolicy) {
        self.candidates = candidates
        self.model = model
        self.policy = policy
    }

    /// What routing tried and why it moved on, for the ledger (`dep-a:connect_error,dep-b:ok`); nil
    /// when the first attempt answered.
    public var attemptsText: String? {
        switch state {
        case .settled(let outcome) where outcome.status == .failed && deployment != nil && lastError == nil:
            // Refused outright by the one deployment tried: nothing to tell.
            return tried.count > 1 ? tried.joined(separator: ",") : nil
        default:
            return tried.isEmpty ? nil : tried.joined(separator: ",")
        }
    }

    /// Whether the request has settled.
    public var isSettled: Bool {
        if case .settled = state { return true }
        return false
    }

    /// The next attempt: round after round through the candidates, skipping those cooling down,
    /// until `maxAttempts` is used up, the deadline would pass, or every one is cooling — then the
    /// request fails with the most telling error (an upstream's own 429, else the last failure).
    ///
    /// Skipping a cooling deployment only helps when something else can serve: when every candidate
    /// is cooling before this request tried any, the one that comes back first is tried anyway and
    /// its own answer (or error) passed on, so a burst of errors never becomes a cooldown-long outage.
    public mutating func nextAttempt(
        now: ContinuousClock.Instant, using random: inout some RandomNumberGenerator,
        claim: (Int) -> Availability
    ) -> Action {
        guard case .routing = state, !candidates.isEmpty else { return .none }
        var soonest: (index: Int, at: ContinuousClock.Instant?)?
        while attempts < policy.maxAttempts, unclaimable < candidates.count {
            let index = next % candidates.count
            next += 1
            let pause = policy.pause(after: attempts, using: &random)
            if attempts > 0 && now + pause >= policy.deadline { break }
            if case .cooling(let until) = claim(index) {
                unclaimable += 1
                if let until { availableAt = min(availableAt ?? until, until) }
                if Self.comesBackSooner(until, than: soonest) { soonest = (index, until) }
                let note = "\(candidates[index]):cooling"
                if !tried.contains(note) { tried.append(note) }
                continue
            }
            unclaimable = 0
            attempts += 1
            state = .attempting(index: index)
            return .attempt(index: index, pause: pause)
        }
        if attempts == 0, let soonest {
            attempts += 1
            state = .attempting(index: soonest.index)
            return .attempt(index: soonest.index, pause: .zero)
        }
        let error = throttled ?? lastError ?? {
            let wait = availableAt.map { ($0 - now).millis } ?? 1000
            return GatewayError.noDeploymentAvailable(model, retryAfterSeconds: Int(max(1, (wait + 999) / 1000)))
        }()
        let outcome = RequestOutcome(
            status: .failed, reason: EndReason(rawValue: error.code ?? "error"), httpStatus: error.httpStatus, charge: false)
        deployment = nil
        state = .settled(outcome)
        return .fail(error, outcome)
    }

    public mutating func handle(_ event: Event) -> Action {
        switch (state, event) {
        case (.settled, _):
            return .none

        case (.attempting(let index), .upstreamAnswered), (.relaying(let index), .upstreamAnswered):
            // Relaying already when a stream was committed before its provider was ready.
            deployment = candidates[index]
            if !tried.isEmpty { tried.append("\(candidates[index]):ok") }
            return .none
        case (_, .upstreamAnswered):
            return .none

        case (.attempting(let index), .committed):
            state = .relaying(index: index)
            return .none
        case (_, .committed):
            return .none

        case (.attempting(let index), .attemptFailed(let failure)):
            deployment = candidates[index]
            tried.append("\(candidates[index]):\(failure.reason)")
            guard failure.retryable else {
                let error = failure.error
                lastError = nil
                return settle(
                    .fail(error, .init(status: .failed, reason: EndReason(rawValue: error.code ?? "error"),
                        httpStatus: error.httpStatus, charge: false)))
            }
            lastError = failure.error
            if failure.error.httpStatus == 429 { throttled = throttled ?? failure.error }
            state = .routing
            return .tryNext(failure)
        case (.relaying, .attemptFailed(let failure)):
            // Too late to move: the stream has begun. The relay reports a failure there as
            // `upstreamFailed` with what it delivered; this event carries no such count, so nothing
            // is charged rather than a guess.
            return handle(.upstreamFailed(failure.error, charge: false))
        case (.routing, .attemptFailed):
            return .none

        case (_, .upstreamEnded(let finishReason, let charge)):
            let reason = finishReason.map(EndReason.init(rawValue:)) ?? .stop
            return settle(.finish(.init(status: .completed, reason: reason, httpStatus: 200, charge: charge)))

        case (.relaying, .upstreamErrorEvent(let error, _, let charge)):
            return settle(
                .finishWithError(error, .init(status: .failed, reason: .upstreamError, httpStatus: 200, charge: charge)))
        case (_, .upstreamErrorEvent(let error, let provider, _)):
            // Before the client got anything an error event is a failed attempt like any other.
            let broken = GatewayError.upstreamBroken(provider, error["message"]?.stringValue ?? "error event")
            guard let failure = AttemptFailure(broken, provider: provider) else {
                return handle(.upstreamFailed(broken, charge: false))
            }
            return handle(.attemptFailed(failure))

        case (.relaying, .upstreamFailed(let error, let charge)):
            let reason = EndReason(rawValue: error.code ?? "upstream_error")
            return settle(
                .finishWithError(error.errorObject, .init(status: .failed, reason: reason, httpStatus: 200, charge: charge)))
        case (_, .upstreamFailed(let error, _)):
            let reason = EndReason(rawValue: error.code ?? "error")
            return settle(.fail(error, .init(status: .failed, reason: reason, httpStatus: error.httpStatus, charge: false)))

        case (.relaying, .clientGone(let charge)):
            return settle(.abandon(.init(status: .clientClosed, reason: .clientClosed, httpStatus: 200, charge: charge)))
        case (_, .clientGone(let charge)):
            // Nothing was sent: 499, as nginx logs a client that closed first.
            return settle(.abandon(.init(status: .clientClosed, reason: .clientClosed, httpStatus: 499, charge: charge)))

        case (.relaying, .stop(.shutdown, let charge)):
            // Cut, not finished: an error event, never a clean [DONE].
            return settle(
                .finishWithError(
                    GatewayError.cutByShutdown.errorObject,
                    .init(status: .interrupted, reason: .shutdown, httpStatus: 200, charge: charge)))
        case (_, .stop(let cause, let charge)):
            let outcome = cause == .shutdown
                ? RequestOutcome(status: .interrupted, reason: .shutdown, httpStatus: 200, charge: charge)
                : RequestOutcome(status: .cancelled, reason: .cancelled, httpStatus: 200, charge: charge)
            return settle(.finishStopped(outcome))

        case (_, .abandoned(let charge)):
            return settle(.abandon(.init(status: .failed, reason: .abandoned, httpStatus: 500, charge: charge)))
        }
    }

    /// Whether a candidate available again at `until` beats `current` (a known time beats an unknown one).
    private static func comesBackSooner(
        _ until: ContinuousClock.Instant?, than current: (index: Int, at: ContinuousClock.Instant?)?
    ) -> Bool {
        guard let current else { return true }
        guard let until else { return false }
        return current.at.map { until < $0 } ?? true
    }

    private mutating func settle(_ action: Action) -> Action {
        if let outcome = action.outcome { state = .settled(outcome) }
        return action
    }
}
