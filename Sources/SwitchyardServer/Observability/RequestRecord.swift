import Synchronization
import SwitchyardCore

/// What one HTTP request became, filled in along the way (who called for which model, how it was
/// settled, why it was refused) and read once at its end for the request log line and the request
/// metrics. Identifiers, counts, money and timings only; never content.
final class RequestRecord: Sendable {
    struct Admission: Sendable {
        var accountID: String
        var keyID: String
        var endUser: String?
        var model: String
        var endpoint: Endpoint
        /// The API the caller used (`chat`, `responses`, `messages`…).
        var api: String
        var stream: Bool
    }

    struct Snapshot: Sendable {
        var admission: Admission?
        var report: SettlementReport?
        var captured: Money?
        var error: GatewayError?
    }

    /// The request id: the caller's valid `x-request-id`, or one the gateway made.
    let id: String
    let startedAt: ContinuousClock.Instant
    private let state = Mutex(Snapshot())

    init(id: String, startedAt: ContinuousClock.Instant) {
        self.id = id
        self.startedAt = startedAt
    }

    /// Who asked for which model, known once the key is authenticated and the model resolved.
    func identified(caller: Caller, endUser: String?, model: ModelConfig, inference: InferenceRequest) {
        let admission = Admission(
            accountID: caller.account.id, keyID: caller.key.id, endUser: endUser, model: model.name,
            endpoint: inference.endpoint, api: inference.api, stream: inference.stream)
        state.withLock { $0.admission = admission }
    }

    func settled(_ report: SettlementReport, captured: Money?) {
        state.withLock { state in
            state.report = report
            state.captured = captured
        }
    }

    func failed(_ error: GatewayError) {
        state.withLock { $0.error = error }
    }

    var snapshot: Snapshot { state.withLock { $0 } }
}
