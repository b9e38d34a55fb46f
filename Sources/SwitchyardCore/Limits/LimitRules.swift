/// Which limits apply to a request: the model's `limits`, the account's and key's own limits (set
/// through the admin API or CLI), the config's `limits:` (per-id overrides, then defaults) and the
/// per-end-user rate.
public enum LimitRules {
    public static func rules(
        model: ModelConfig, account: Account, key: APIKey, endUser: String?, config: LimitsConfig
    ) -> [RateLimitRule] {
        let accountLimits = config.effective(for: account)
        let keyLimits = config.effective(for: key)
        var rules = [
            RateLimitRule(
                scope: .model, name: model.name, label: "the model '\(model.name)'",
                requestsPerMinute: model.limits.requestsPerMinute, concurrent: model.limits.concurrent),
            RateLimitRule(
                scope: .account, name: account.id, label: "this account",
                requestsPerMinute: accountLimits.requestsPerMinute, tokensPerMinute: accountLimits.tokensPerMinute,
                concurrent: accountLimits.concurrent),
            RateLimitRule(
                scope: .key, name: key.id, label: "this key", requestsPerMinute: keyLimits.requestsPerMinute,
                tokensPerMinute: keyLimits.tokensPerMinute, concurrent: keyLimits.concurrent),
        ]
        if let endUser, let perMinute = config.endUserRequestsPerMinute {
            rules.append(
                RateLimitRule(
                    scope: .endUser, name: account.id + "\u{0}" + endUser, label: "this end user",
                    requestsPerMinute: perMinute))
        }
        return rules
    }

    /// The tokens a request is counted for under tokens-per-minute limits: the prompt estimate plus
    /// what `HoldEstimate` reserves for the completion (corrected when the request settles); zero when
    /// no rule limits tokens.
    public static func tokens(
        for rules: [RateLimitRule], inference: InferenceRequest, model: ModelConfig, promptEstimate: Int
    ) -> Int {
        guard rules.contains(where: { $0.tokensPerMinute != nil }) else { return 0 }
        return promptEstimate + HoldEstimate.completionTokens(inference, model: model, promptEstimate: promptEstimate)
    }
}
