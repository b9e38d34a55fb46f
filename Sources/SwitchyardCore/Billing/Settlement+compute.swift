/// When things happened to one request, as settlement and the metrics need them.
public struct RequestTimings: Sendable, Equatable {
    /// When the request reached the gateway.
    public var arrivedAt: ContinuousClock.Instant
    /// When it left for the upstream that answered (after any `prepare`); nil when it never did.
    public var sentAt: ContinuousClock.Instant?
    /// Time the provider spent preparing (loading a managed engine): recorded, never billed.
    public var load: Duration = .zero
    public var firstOutputAt: ContinuousClock.Instant?
    public var lastByteAt: ContinuousClock.Instant?

    public init(arrivedAt: ContinuousClock.Instant) {
        self.arrivedAt = arrivedAt
    }
}

extension LedgerSettlement {
    /// The settlement of a request that ended with `outcome`: tokens from `meter` (the upstream's
    /// usage, else estimates; nothing when not charged), cost at the model's price and the account's
    /// multiplier, per-second billing on generation time only (from reaching the upstream to the last
    /// byte, capped at the model's `max_seconds`), never on queueing or loading.
    public init(
        open: LedgerOpen, outcome: RequestOutcome, meter: Meter, timings: RequestTimings, end: ContinuousClock.Instant,
        price: Price, maxSeconds: Int, multiplierPPM: Int64, finishedAt: Int64, deployment: String?, attempts: String?
    ) {
        let usage = meter.billable(charge: outcome.charge)
        let last = timings.lastByteAt ?? end
        let sent = timings.sentAt ?? timings.arrivedAt
        let generation = (last - sent).millis
        let billedGeneration = min(generation, Int64(maxSeconds) * 1000)
        let media = meter.media
        let cost = outcome.charge
            ? price.cost(
                promptTokens: usage.prompt, completionTokens: usage.completion, generationMillis: billedGeneration,
                multiplierPPM: multiplierPPM, media: media)
            : .zero
        let units = outcome.charge ? media.units(for: price) : media.units(for: price).map { (0, $0.unit) }
        let load = timings.load.millis
        self.init(
            requestID: open.requestID, accountID: open.accountID, hold: open.hold, cost: min(cost, Money(micros: .max)),
            status: outcome.status, endReason: outcome.reason, httpStatus: outcome.httpStatus,
            promptTokens: usage.prompt, completionTokens: usage.completion, usageSource: usage.source,
            queueMillis: max(0, (sent - timings.arrivedAt).millis - load), loadMillis: load,
            firstTokenMillis: timings.firstOutputAt.map { ($0 - sent).millis },
            generationMillis: generation, finishedAt: finishedAt, deployment: deployment, attempts: attempts,
            units: units?.count, unit: units?.unit)
    }
}
