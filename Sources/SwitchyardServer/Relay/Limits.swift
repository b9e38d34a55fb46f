import HTTPTypes
import Hummingbird
import Metrics
import SwitchyardCore
import Synchronization

/// Admission under the limits that apply to a request (`LimitRules`), through the `RateLimiting` port
/// (in memory for one process, in PostgreSQL for several replicas), counting refusals in
/// `switchyard_rate_limited_total`.
struct Limits: Sendable {
    let config: LimitsConfig
    let limiter: any RateLimiting
    /// By scope and limit kind, made once.
    fileprivate let refusals: [String: Counter]

    init(config: LimitsConfig, limiter: any RateLimiting) {
        self.config = config
        self.limiter = limiter
        var refusals: [String: Counter] = [:]
        for scope in RateLimitScope.allCases {
            for kind in RateLimitKind.allCases {
                refusals["\(scope.rawValue)/\(kind.rawValue)"] = Counter(
                    label: "switchyard_rate_limited_total", dimensions: [("scope", scope.rawValue), ("limit", kind.rawValue)])
            }
        }
        self.refusals = refusals
    }

    /// Admits the request or throws the 429; the estimate of its tokens is what `HoldEstimate` reserves
    /// for the completion plus an estimate of the prompt, corrected when the request settles.
    func admit(
        model: ModelConfig, caller: Caller, endUser: String?, inference: InferenceRequest, promptEstimate: Int
    ) async throws(GatewayError) -> Admission {
        let rules = LimitRules.rules(
            model: model, account: caller.account, key: caller.key, endUser: endUser, config: config)
        let tokens = LimitRules.tokens(for: rules, inference: inference, model: model, promptEstimate: promptEstimate)
        do {
            return Admission(limiter: limiter, grant: try await limiter.admit(rules, tokens: tokens))
        } catch {
            count(error)
            throw error.error
        }
    }
}

extension Limits {
    /// A fallback model's own limits (its `limits:`), for a request routed to it.
    func admitFallback(_ model: ModelConfig) async throws(GatewayError) -> Admission {
        let rule = RateLimitRule(
            scope: .model, name: model.name, label: "the model '\(model.name)'",
            requestsPerMinute: model.limits.requestsPerMinute, concurrent: model.limits.concurrent)
        do {
            return Admission(limiter: limiter, grant: try await limiter.admit([rule], tokens: 0))
        } catch {
            count(error)
            throw error.error
        }
    }

    /// A limit's refusal counts in `switchyard_rate_limited_total`; an unreachable database does not
    /// (its 503s are counted by status like any error).
    fileprivate func count(_ refusal: RateLimitRefusal) {
        guard refusal.isLimit else { return }
        refusals["\(refusal.scope.rawValue)/\(refusal.kind.rawValue)"]?.increment()
    }
}

/// The admissions a request collects on its way (fallback models' limits), finished together.
final class Admissions: Sendable {
    private let list = Mutex<[Admission]>([])

    func add(_ admission: Admission) { list.withLock { $0.append(admission) } }
    func finishAll() { list.withLock { $0 }.forEach { $0.finish(tokens: nil) } }
}

extension Response {
    /// Adds the `x-ratelimit-*` headers (or any others) to an answer.
    mutating func add(headers: [(name: String, value: String)]) {
        self.headers.add(headers)
    }
}
