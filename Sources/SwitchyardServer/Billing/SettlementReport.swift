import SwitchyardCore

/// A settled request as the metrics and the request log see it: the ledger row's data plus the
/// instants the ledger rounds to milliseconds. Never content.
struct SettlementReport: Sendable {
    var open: LedgerOpen
    var settlement: LedgerSettlement
    var endpoint: Endpoint
    /// Whether the client asked for a stream.
    var stream: Bool
    var timings: RequestTimings
    var lastByteAt: ContinuousClock.Instant

    /// When the request reached the gateway.
    var arrivedAt: ContinuousClock.Instant { timings.arrivedAt }
    /// When it left for the upstream; nil when it never did.
    var sentAt: ContinuousClock.Instant? { timings.sentAt }
    var firstOutputAt: ContinuousClock.Instant? { timings.firstOutputAt }

    /// The deployment that served it (routing may have moved it off the one recorded at admission).
    var deployment: String { settlement.deployment ?? open.deployment }

    /// Time spent in the gateway before the upstream was asked: reading, authenticating, validating,
    /// admitting and holding (a provider's load time excluded).
    var overhead: Duration? { sentAt.map { $0 - arrivedAt - timings.load } }

    /// From arrival to the first output relayed, for streams that produced any.
    var timeToFirstToken: Duration? {
        guard stream, let firstOutputAt else { return nil }
        return firstOutputAt - arrivedAt
    }

    /// From arrival to the last byte of the answer.
    var duration: Duration { lastByteAt - arrivedAt }

    /// Average time between output tokens after the first, for streams with at least two.
    var timePerOutputToken: Duration? {
        guard stream, let firstOutputAt, settlement.completionTokens > 1 else { return nil }
        return (lastByteAt - firstOutputAt) / (settlement.completionTokens - 1)
    }
}
