import Logging
import SwitchyardCore

/// The billing side of the gateway: who may call, and the holds that guard every request.
struct Billing: Sendable {
    let store: any BillingStore
    let authenticator: Authenticator
    /// Names this process in ledger rows, so that a restart releases only its own interrupted holds.
    let instance: String
    let metrics: GatewayMetrics
    let lifecycle: GatewayLifecycle
    let clock: any GatewayClock

    /// Reserves the worst-case cost and writes the request's ledger row; 402 when the balance
    /// (minus other holds) does not cover it. `record` (the request's log record) learns how it was
    /// settled.
    func admit(
        plan: RelayPlan, inference: InferenceRequest, promptEstimate: Int, model: ModelConfig, caller: Caller,
        endUser: String?, arrivedAt: ContinuousClock.Instant, requestLifecycle: RequestLifecycle, logger: Logger,
        record: RequestRecord? = nil, onSettled: @escaping @Sendable (LedgerSettlement) -> Void
    ) async throws -> BillingTicket {
        let hold = HoldEstimate.hold(
            for: inference, model: model, multiplierPPM: caller.account.multiplierPPM, promptEstimate: promptEstimate)
        let open = LedgerOpen(
            requestID: plan.identity.id, accountID: caller.account.id, keyID: caller.key.id,
            endUser: endUser, model: model.name, deployment: plan.deployment, hold: hold,
            instance: instance, startedAt: clock.unixMillis, httpRequestID: record?.id, api: inference.api)
        switch try await store.openHold(open) {
        case .held:
            let metrics = self.metrics
            metrics.holdOpened(hold)
            return BillingTicket(
                open: open, endpoint: inference.endpoint, stream: inference.stream, store: store, model: model,
                multiplierPPM: caller.account.multiplierPPM,
                promptEstimate: promptEstimate,
                // The request's clock starts where the gateway first saw it, so overhead includes routing.
                arrivedAt: record?.startedAt ?? arrivedAt, requestLifecycle: requestLifecycle, clock: clock, logger: logger,
                lifecycle: lifecycle, onSettled: onSettled,
                onReport: { report, captured in
                    metrics.settled(report, captured: captured)
                    record?.settled(report, captured: captured)
                })
        case .insufficient(let available):
            throw GatewayError.insufficientQuota(needed: hold, available: available)
        case .accountInactive:
            authenticator.forget(accountID: caller.account.id)
            throw GatewayError.accountSuspended(caller.account.id)
        }
    }
}
