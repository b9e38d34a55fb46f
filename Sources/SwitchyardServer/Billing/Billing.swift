import Foundation
import Logging
import SwitchyardCore

/// The billing side of the gateway: who may call, and the holds that guard every request.
struct Billing: Sendable {
    let store: any BillingStore
    let authenticator: Authenticator
    /// Names this process in ledger rows, so that a restart releases only its own interrupted holds.
    let instance: String

    /// Reserves the worst-case cost and writes the request's ledger row; 402 when the balance
    /// (minus other holds) does not cover it.
    func admit(
        plan: RelayPlan, inference: InferenceRequest, model: ModelConfig, caller: Caller, endUser: String?,
        arrivedAt: ContinuousClock.Instant, logger: Logger, onSettled: @escaping @Sendable (LedgerSettlement) -> Void
    ) async throws -> BillingTicket {
        let hold = HoldEstimate.hold(for: inference, model: model, multiplierPPM: caller.account.multiplierPPM)
        let open = LedgerOpen(
            requestID: plan.identity.id, accountID: caller.account.id, keyID: caller.key.id,
            endUser: endUser, model: model.name, deployment: plan.deployment, hold: hold,
            instance: instance, startedAt: Int64(Date().timeIntervalSince1970 * 1000))
        switch try await store.openHold(open) {
        case .held:
            return BillingTicket(
                open: open, store: store, model: model, multiplierPPM: caller.account.multiplierPPM,
                promptEstimate: TokenEstimate.prompt(of: inference.body, endpoint: inference.endpoint),
                arrivedAt: arrivedAt, logger: logger, onSettled: onSettled)
        case .insufficient(let available):
            throw GatewayError.insufficientQuota(needed: hold, available: available)
        case .accountInactive:
            authenticator.forget(accountID: caller.account.id)
            throw GatewayError(
                status: 403, message: "The account '\(caller.account.id)' is suspended.", type: "invalid_request_error",
                code: "account_suspended")
        }
    }
}
