/// How a request moves between deployments when one fails before answering (`routing:`).
public struct RoutingConfig: Sendable, Equatable {
    /// Attempts at most per request, across the model's deployments and its fallbacks'.
    public var maxAttempts: Int
    /// From the request's arrival: no attempt starts, and no backoff waits, past this.
    public var deadline: Duration
    /// Backoff before the second attempt; doubles with each further one (full jitter), up to `maxBackoff`.
    public var backoff: Duration
    public var maxBackoff: Duration
    public var cooldown: Cooldown

    /// A deployment that fails `failures` times in a row is skipped for `duration`, then tried again.
    public struct Cooldown: Sendable, Equatable {
        public var failures: Int
        public var duration: Duration

        public init(failures: Int = 3, duration: Duration = .seconds(30)) {
            self.failures = failures
            self.duration = duration
        }
    }

    public init(
        maxAttempts: Int = 4, deadline: Duration = .seconds(30), backoff: Duration = .milliseconds(50),
        maxBackoff: Duration = .seconds(1), cooldown: Cooldown = .init()
    ) {
        self.maxAttempts = maxAttempts
        self.deadline = deadline
        self.backoff = backoff
        self.maxBackoff = maxBackoff
        self.cooldown = cooldown
    }
}

/// Limits on callers (`limits:`), enforced per gateway process. Per-model limits are on `ModelConfig`.
public struct LimitsConfig: Sendable, Equatable {
    /// What one account, or one key, may do; nil fields are unlimited.
    public struct Caller: Sendable, Equatable {
        public var requestsPerMinute: Int?
        public var tokensPerMinute: Int?
        public var concurrent: Int?

        public init(requestsPerMinute: Int? = nil, tokensPerMinute: Int? = nil, concurrent: Int? = nil) {
            self.requestsPerMinute = requestsPerMinute
            self.tokensPerMinute = tokensPerMinute
            self.concurrent = concurrent
        }

        /// The values each field may take, wherever a limit is set (config, admin API, CLI).
        public static let requestsPerMinuteRange = 1...100_000_000
        public static let tokensPerMinuteRange = 1...1_000_000_000
        public static let concurrentRange = 1...1_000_000

        /// A field's value that means "no limit", even where the config sets one: an account's or a
        /// key's own limits (admin API: `"unlimited"`) can remove a config limit as well as change it.
        public static let unlimited = 0

        /// The limits as they apply: `unlimited` fields become no limit.
        public var resolved: Caller {
            func resolve(_ value: Int?) -> Int? { value == Self.unlimited ? nil : value }
            return Caller(
                requestsPerMinute: resolve(requestsPerMinute), tokensPerMinute: resolve(tokensPerMinute),
                concurrent: resolve(concurrent))
        }

        /// No field set.
        public var isEmpty: Bool { requestsPerMinute == nil && tokensPerMinute == nil && concurrent == nil }

        /// `override`'s fields where it sets them, this one's elsewhere.
        public func overridden(by override: Caller?) -> Caller {
            guard let override else { return self }
            return Caller(
                requestsPerMinute: override.requestsPerMinute ?? requestsPerMinute,
                tokensPerMinute: override.tokensPerMinute ?? tokensPerMinute,
                concurrent: override.concurrent ?? concurrent)
        }
    }

    /// Every account's default.
    public var account: Caller
    /// Every key's default.
    public var key: Caller
    /// Requests per minute of one end user (the body's `user` or the path's `{userid}`) of one account.
    public var endUserRequestsPerMinute: Int?
    /// By account id: replaces the default's fields it sets.
    public var accounts: [String: Caller]
    /// By key id: replaces the default's fields it sets.
    public var keys: [String: Caller]

    public init(
        account: Caller = .init(), key: Caller = .init(), endUserRequestsPerMinute: Int? = nil,
        accounts: [String: Caller] = [:], keys: [String: Caller] = [:]
    ) {
        self.account = account
        self.key = key
        self.endUserRequestsPerMinute = endUserRequestsPerMinute
        self.accounts = accounts
        self.keys = keys
    }

    /// The limits that apply to an account, field by field: its own (database) value where set, else
    /// its entry under `accounts`, else the `account` default; an own value of `unlimited` removes it.
    public func effective(for account: Account) -> Caller {
        self.account.overridden(by: accounts[account.id]).overridden(by: account.limits).resolved
    }

    /// The same for a key: its own value, else `keys[id]`, else the `key` default.
    public func effective(for key: APIKey) -> Caller {
        self.key.overridden(by: keys[key.id]).overridden(by: key.limits).resolved
    }
}
