import SwitchyardCore

/// `routing:` and `limits:` (docs/ROUTING.md).
extension ConfigLoader {
    static func readRouting(_ node: ConfigNode) throws(ConfigError) -> RoutingConfig {
        let fields = try node.fields(["max_attempts", "deadline", "backoff", "max_backoff", "cooldown"])
        var routing = RoutingConfig()
        if let value = fields["max_attempts"] { routing.maxAttempts = try value.int(in: 1...100) }
        if let value = fields["deadline"] { routing.deadline = try positive(value) }
        if let value = fields["backoff"] { routing.backoff = try value.duration() }
        if let value = fields["max_backoff"] { routing.maxBackoff = try value.duration() }
        if let cooldown = fields["cooldown"] {
            let values = try cooldown.fields(["failures", "duration"])
            if let value = values["failures"] { routing.cooldown.failures = try value.int(in: 1...1_000_000) }
            if let value = values["duration"] { routing.cooldown.duration = try positive(value) }
        }
        return routing
    }

    static func readLimits(_ node: ConfigNode) throws(ConfigError) -> LimitsConfig {
        let fields = try node.fields(["account", "key", "end_user", "accounts", "keys"])
        var limits = LimitsConfig()
        if let value = fields["account"] { limits.account = try readCallerLimits(value) }
        if let value = fields["key"] { limits.key = try readCallerLimits(value) }
        if let value = fields["end_user"] {
            limits.endUserRequestsPerMinute = try value.fields(["requests_per_minute"])["requests_per_minute"]?
                .int(in: LimitsConfig.Caller.requestsPerMinuteRange)
        }
        for (id, value) in try fields["accounts"]?.mapping() ?? [] { limits.accounts[id] = try readCallerLimits(value) }
        for (id, value) in try fields["keys"]?.mapping() ?? [] { limits.keys[id] = try readCallerLimits(value) }
        return limits
    }

    static func readCallerLimits(_ node: ConfigNode) throws(ConfigError) -> LimitsConfig.Caller {
        try readCallerLimits(fields: try node.fields(["requests_per_minute", "tokens_per_minute", "concurrent"]))
    }

    /// The limit fields of a mapping whose fields were already read (it may hold other keys too).
    static func readCallerLimits(fields: [String: ConfigNode]) throws(ConfigError) -> LimitsConfig.Caller {
        LimitsConfig.Caller(
            requestsPerMinute: try fields["requests_per_minute"]?.int(in: LimitsConfig.Caller.requestsPerMinuteRange),
            tokensPerMinute: try fields["tokens_per_minute"]?.int(in: LimitsConfig.Caller.tokensPerMinuteRange),
            concurrent: try fields["concurrent"]?.int(in: LimitsConfig.Caller.concurrentRange))
    }
}
