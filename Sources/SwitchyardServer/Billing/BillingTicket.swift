import Foundation
import Logging
import Synchronization
import SwitchyardCore

/// One admitted request's hold, from admission to settlement. The relay records what happens
/// (upstream sent, first output, usage, output relayed) and ends it with `settle`, which runs once;
/// a ticket dropped without being settled (a path nobody foresaw) settles itself as failed, so a hold
/// is never stranded. A request stopped because the gateway is shutting down is settled as
/// `interrupted` (end reason `shutdown`), billed for what it delivered.
final class BillingTicket: Sendable {
    typealias Outcome = RequestOutcome

    private struct State {
        var meter: Meter
        var sentAt: ContinuousClock.Instant?
        var firstOutputAt: ContinuousClock.Instant?
        var lastByteAt: ContinuousClock.Instant?
        /// The deployment that served (or last failed), and what routing tried.
        var deployment: String?
        var attempts: String?
        var settled = false
    }

    let open: LedgerOpen
    private let endpoint: Endpoint
    private let stream: Bool
    private let store: any BillingStore
    private let price: Price
    private let maxSeconds: Int
    private let multiplierPPM: Int64
    private let arrivedAt: ContinuousClock.Instant
    private let logger: Logger
    private let state: Mutex<State>
    private let lifecycle: GatewayLifecycle?
    /// Runs once the ticket is settled (the request leaves the in-flight registry and its limits).
    private let onSettled: @Sendable (LedgerSettlement) -> Void
    /// Runs once the settlement is written, with what was captured (metrics, the request log).
    private let onReport: @Sendable (SettlementReport, Money?) -> Void

    init(
        open: LedgerOpen, endpoint: Endpoint, stream: Bool, store: any BillingStore, model: ModelConfig,
        multiplierPPM: Int64, promptEstimate: Int, arrivedAt: ContinuousClock.Instant, logger: Logger,
        lifecycle: GatewayLifecycle? = nil, onSettled: @escaping @Sendable (LedgerSettlement) -> Void = { _ in },
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
        self.arrivedAt = arrivedAt
        self.logger = logger
        self.state = Mutex(State(meter: Meter(promptEstimate: promptEstimate)))
    }

    deinit {
        guard let report = state.withLock({ state -> SettlementReport? in
            guard !state.settled else { return nil }
            state.settled = true
            return makeReport(
                state, Outcome(status: .failed, reason: .abandoned, httpStatus: 500, charge: state.meter.deliveredOutput))
        }) else { return }
        let store = self.store
        let logger = self.logger
        let onReport = self.onReport
        onSettled(report.settlement)
        Task { onReport(report, await Self.write(report.settlement, to: store, logger: logger)) }
    }

    /// Whether the request is being stopped because the gateway is shutting down (the drain time ran
    /// out), rather than by its caller.
    var interruptedByShutdown: Bool { lifecycle?.phase == .stopping }

    func markSent() {
        state.withLock { $0.sentAt = .now }
    }

    /// Metering from a stream or an assembled answer, replacing what was recorded before.
    func record(usage: Usage?, outputChunks: Int, outputBytes: Int) {
        state.withLock { state in
            let now = ContinuousClock.now
            if state.firstOutputAt == nil && (outputChunks > 0 || outputBytes > 0) { state.firstOutputAt = now }
            state.lastByteAt = now
            if let usage { state.meter.reported = usage }
            state.meter.outputChunks = outputChunks
            state.meter.outputBytes = outputBytes
        }
    }

    /// What routing did, for the ledger row: the deployment used and the attempts (`nil` when the
    /// first one answered).
    func recordRouting(deployment: String?, attempts: String?) {
        state.withLock { state in
            if let deployment { state.deployment = deployment }
            state.attempts = attempts
        }
    }

    /// Captures the cost and releases the hold; later calls do nothing. Returns what was captured.
    @discardableResult
    func settle(_ outcome: Outcome) async -> Money? {
        var outcome = outcome
        if outcome.status == .cancelled && interruptedByShutdown {
            outcome.status = .interrupted
            outcome.reason = .shutdown
        }
        guard let report = state.withLock({ state -> SettlementReport? in
            guard !state.settled else { return nil }
            state.settled = true
            if state.lastByteAt == nil { state.lastByteAt = .now }
            return makeReport(state, outcome)
        }) else { return nil }
        onSettled(report.settlement)
        let captured = await Self.write(report.settlement, to: store, logger: logger)
        onReport(report, captured)
        return captured
    }

    /// The usage that settling now would bill, for the final chunk of a stopped stream.
    func billableUsage(charge: Bool) -> Usage {
        let usage = state.withLock { $0.meter.billable(charge: charge) }
        return Usage(promptTokens: usage.prompt, completionTokens: usage.completion)
    }

    private func makeReport(_ state: State, _ outcome: Outcome) -> SettlementReport {
        let last = state.lastByteAt ?? .now
        return SettlementReport(
            open: open, settlement: makeSettlement(state, outcome, last: last), endpoint: endpoint, stream: stream,
            arrivedAt: arrivedAt, sentAt: state.sentAt, firstOutputAt: state.firstOutputAt, lastByteAt: last)
    }

    private func makeSettlement(_ state: State, _ outcome: Outcome, last: ContinuousClock.Instant) -> LedgerSettlement {
        let usage = state.meter.billable(charge: outcome.charge)
        let sent = state.sentAt ?? arrivedAt
        let generation = min(Self.millis(last - sent), Int64(maxSeconds) * 1000)
        let cost = outcome.charge
            ? price.cost(
                promptTokens: usage.prompt, completionTokens: usage.completion, generationMillis: generation,
                multiplierPPM: multiplierPPM)
            : .zero
        return LedgerSettlement(
            requestID: open.requestID, accountID: open.accountID, hold: open.hold, cost: min(cost, Money(micros: .max)),
            status: outcome.status, endReason: outcome.reason, httpStatus: outcome.httpStatus,
            promptTokens: usage.prompt, completionTokens: usage.completion, usageSource: usage.source,
            queueMillis: Self.millis(sent - arrivedAt), loadMillis: 0,
            firstTokenMillis: state.firstOutputAt.map { Self.millis($0 - sent) },
            generationMillis: Self.millis(last - sent),
            finishedAt: Int64(Date().timeIntervalSince1970 * 1000),
            deployment: state.deployment, attempts: state.attempts
        )
    }

    /// A failed write is retried briefly; if the database stays away the row stays `running` and the
    /// next start releases it (`recoverInterrupted`), so the hold is not lost for good.
    @discardableResult
    private static func write(_ settlement: LedgerSettlement, to store: any BillingStore, logger: Logger) async -> Money? {
        for attempt in 1...3 {
            do {
                // A task of its own: the request's task may be cancelled (client gone, shutdown), and
                // settling must not be cancelled with it.
                return try await Task { try await store.settle(settlement) }.value
            } catch {
                logger.error(
                    "settlement failed", metadata: ["request.id": "\(settlement.requestID)", "attempt": "\(attempt)"])
                try? await Task.sleep(for: .milliseconds(50 * attempt))
            }
        }
        return nil
    }

    static func millis(_ duration: Duration) -> Int64 {
        let (seconds, attoseconds) = duration.components
        return max(0, seconds * 1000 + attoseconds / 1_000_000_000_000_000)
    }
}
