import HTTPTypes
import Hummingbird
import SwitchyardCore

/// Which limits apply to a request, from the model's `limits`, the account's and key's own limits (set
/// through the admin API or CLI) and the config's `limits:` (per-id overrides, then defaults), and its
/// admission under them.
struct Limits: Sendable {
    let config: LimitsConfig
    let limiter: RateLimiter

    /// Admits the request or throws the 429; the estimate of its tokens is what `HoldEstimate` reserves
    /// for the completion plus an estimate of the prompt, corrected when the request settles.
    func admit(
        model: ModelConfig, caller: Caller, endUser: String?, inference: InferenceRequest, promptEstimate: Int
    ) throws -> Admission {
        let account = config.effective(for: caller.account)
        let key = config.effective(for: caller.key)
        var rules = [
            RateLimiter.Rule(
                scope: .model, name: model.name, label: "the model '\(model.name)'",
                requestsPerMinute: model.limits.requestsPerMinute, concurrent: model.limits.concurrent),
            RateLimiter.Rule(
                scope: .account, name: caller.account.id, label: "this account",
                requestsPerMinute: account.requestsPerMinute, tokensPerMinute: account.tokensPerMinute,
                concurrent: account.concurrent),
            RateLimiter.Rule(
                scope: .key, name: caller.key.id, label: "this key", requestsPerMinute: key.requestsPerMinute,
                tokensPerMinute: key.tokensPerMinute, concurrent: key.concurrent),
        ]
        if let endUser, let perMinute = config.endUserRequestsPerMinute {
            rules.append(
                RateLimiter.Rule(
                    scope: .endUser, name: caller.account.id + "\u{0}" + endUser, label: "this end user",
                    requestsPerMinute: perMinute))
        }
        let tokens = rules.contains { $0.tokensPerMinute != nil }
            ? promptEstimate + HoldEstimate.completionTokens(inference, model: model, promptEstimate: promptEstimate)
            : 0
        return try limiter.admit(rules, tokens: tokens)
    }
}

extension Response {
    /// Adds the `x-ratelimit-*` headers (or any others) to an answer.
    mutating func add(headers: [(name: String, value: String)]) {
        self.headers.add(headers)
    }
}
