import Logging
import Synchronization
import SwitchyardCore

/// One admitted request from its hold to its settlement: its `RequestLifecycle` (which decides how it
/// ends), its metering and timings, and the settlement itself, which runs once. The relay reports
/// events here and performs the actions it gets back. A ticket dropped on a path that settled
/// nothing (one nobody foresaw) settles itself as abandoned, so a hold is never stranded.
final class BillingTicket: Sendable {
    private struct State {
        var lifecycle: RequestLifecycle
        var meter: Meter
        var timings: RequestTimings
        var settled = false
    }

    let open: LedgerOpen
    private let endpoint: Endpoint
    private let stream: Bool
    private let store: any BillingStore
    private let price: Price
    private let maxSeconds: Int
    private let multiplierPPM: Int64
    private let clock: any GatewayClock
    private let logger: Logger
    private let state: Mutex<State>
    private let lifecycle: GatewayLifecycle?
    /// Runs once the ticket is settled (the request leaves the in-flight registry and its limits).
    private let onSettled: @Sendable (LedgerSettlement) -> Void
    /// Runs once the settlement is written, with what was captured (metrics, the request log).
    private let onReport: @Sendable (SettlementReport, Money?) -> Void

    init(
        open: LedgerOpen, endpoint: Endpoint, stream: Bool, store: any BillingStore, model: ModelConfig,
        multiplierPPM: Int64, promptEstimate: Int, arrivedAt: ContinuousClock.Instant, requestLifecycle: RequestLifecycle,
        clock: any GatewayClock, logger: Logger, lifecycle: GatewayLifecycle? = nil,
        onSettled: @escaping @Sendable (LedgerSettlement) -> Void = { _ in },
        onReport: @escaping @Sendable (SettlementReport, Money?) -> Void = { _, _ in }
    ) {
        self.onSettled = onSettled
        self.onReport = onReport
        self.lifecycle = lifecycle
        self.endpoint = endpoint
        self.stream = stream
        self.open = open
        self.store = store
        self.price = model.price
        self.maxSeconds = model.maxSeconds
        self.multiplierPPM = multiplierPPM
        self.clock = clock
        self.logger = logger
        self.state = Mutex(
            State(
                lifecycle: requestLifecycle, meter: Meter(promptEstimate: promptEstimate),
                timings: RequestTimings(arrivedAt: arrivedAt)))
    }

    deinit {
        let report = state.withLock { state -> SettlementReport? in
            let action = state.lifecycle.handle(.abandoned(charge: state.meter.deliveredOutput))
            guard let outcome = action.outcome, !state.settled else { return nil }
            state.settled = true
            return makeReport(state, outcome)
        }
        guard let report else { return }
        onSettled(report.settlement)
        // No task from a deinit: the settlement is handed to the ledger writer's queue.
        let onReport = self.onReport
        store.settleEventually(report.settlement) { result in onReport(report, try? result.get()) }
    }

    // MARK: the lifecycle

    /// Why a stop that fired now was sent: the gateway's drain running out, or the request's caller.
    var stopCause: RequestLifecycle.StopCause { lifecycle?.phase == .stopping ? .shutdown : .caller }

    /// Reports an event; returns what to do. Actions that settle are performed with `settle`.
    func handle(_ event: RequestLifecycle.Event) -> RequestLifecycle.Action {
        state.withLock { $0.lifecycle.handle(event) }
    }

    /// What routing tried, for the log (see `RequestLifecycle.attemptsText`).
    var attemptsText: String? { state.withLock { $0.lifecycle.attemptsText } }

    /// The next attempt (see `RequestLifecycle.nextAttempt`).
    func nextAttempt(claim: (Int) -> RequestLifecycle.Availability) -> RequestLifecycle.Action {
        var random = SystemRandomNumberGenerator()
        let now = clock.now
        return state.withLock { $0.lifecycle.nextAttempt(now: now, using: &random, claim: claim) }
    }

    // MARK: metering

    /// The provider spent `duration` getting ready (a managed engine loading): never billed.
    func recordLoad(_ duration: Duration) {
        state.withLock { $0.timings.load += duration }
    }

    func markSent() {
        let now = clock.now
        state.withLock { $0.timings.sentAt = now }
    }

    /// Metering from a stream or an assembled answer, replacing what was recorded before.
    func record(usage: Usage?, outputChunks: Int, outputBytes: Int) {
        let now = clock.now
        state.withLock { state in
            if state.timings.firstOutputAt == nil && (outputChunks > 0 || outputBytes > 0) {
                state.timings.firstOutputAt = now
            }
            state.timings.lastByteAt = now
            if let usage { state.meter.reported = usage }
            state.meter.outputChunks = outputChunks
            state.meter.outputBytes = outputBytes
        }
    }

    /// What a media request delivered so far (images, characters, audio).
    func recordMedia(_ media: MediaUsage) {
        let now = clock.now
        state.withLock { state in
            state.meter.media = media
            state.meter.isMedia = true
            state.timings.lastByteAt = now
        }
    }

    /// Exact counts from the engine's tokenizer, for an upstream that reported none.
    func recordCounted(_ usage: Usage) {
        state.withLock { $0.meter.counted = usage }
    }

    /// Whether the upstream reported usage itself.
    var hasReportedUsage: Bool { state.withLock { $0.meter.reported != nil } }

    /// What a charged request is billed for and where the numbers came from (`reported` by the
    /// upstream, else `estimated`), for a whole answer's `usage` and its `x-switchyard-usage-source`.
    var billedUsage: (usage: Usage, source: LedgerSettlement.UsageSource) {
        let usage = state.withLock { $0.meter.billable(charge: true) }
        return (Usage(promptTokens: usage.prompt, completionTokens: usage.completion), usage.source)
    }

    /// The usage that settling now would bill, for the final chunk of a stopped stream.
    func billableUsage(charge: Bool) -> Usage {
        let usage = state.withLock { $0.meter.billable(charge: charge) }
        return Usage(promptTokens: usage.prompt, completionTokens: usage.completion)
    }

    // MARK: settlement

    /// Captures the cost of `outcome` (an action's) and releases the hold; later calls do nothing.
    /// Returns what was captured.
    @discardableResult
    func settle(_ outcome: RequestOutcome) async -> Money? {
        let end = clock.now
        guard let report = state.withLock({ state -> SettlementReport? in
            guard !state.settled else { return nil }
            state.settled = true
            if state.timings.lastByteAt == nil { state.timings.lastByteAt = end }
            return makeReport(state, outcome)
        }) else { return nil }
        onSettled(report.settlement)
        let captured = await Self.write(report.settlement, to: store, logger: logger)
        onReport(report, captured)
        return captured
    }

    private func makeReport(_ state: State, _ outcome: RequestOutcome) -> SettlementReport {
        let end = state.timings.lastByteAt ?? clock.now
        let settlement = LedgerSettlement(
            open: open, outcome: outcome, meter: state.meter, timings: state.timings, end: end, price: price,
            maxSeconds: maxSeconds, multiplierPPM: multiplierPPM, finishedAt: clock.unixMillis,
            deployment: state.lifecycle.deployment, attempts: state.lifecycle.attemptsText)
        return SettlementReport(
            open: open, settlement: settlement, endpoint: endpoint, stream: stream, timings: state.timings, lastByteAt: end)
    }

    /// A failed write is retried briefly; if the database stays away the row stays `running` and the
    /// next start releases it (`recoverInterrupted`), so the hold is not lost for good.
    @discardableResult
    private static func write(_ settlement: LedgerSettlement, to store: any BillingStore, logger: Logger) async -> Money? {
        for attempt in 1...3 {
            do {
                // Not cancelled with the request's task (client gone, shutdown): a settlement, once
                // queued, is written.
                return try await store.settle(settlement)
            } catch {
                logger.error(
                    "settlement failed", metadata: ["request.id": "\(settlement.requestID)", "attempt": "\(attempt)"])
                try? await Task.sleep(for: .milliseconds(50 * attempt))
            }
        }
        return nil
    }
}
