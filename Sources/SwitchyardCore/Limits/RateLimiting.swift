import Synchronization

/// The admission-limits port: requests and tokens per minute and concurrent requests, per model,
/// account, key and end user. A request is admitted only if every limit that applies to it has room,
/// and is then counted against all of them in one step; a refused request changes nothing.
///
/// `InMemoryRateLimiter` is this process's adapter; `PostgresRateLimiter` (SwitchyardStore) is the
/// one several replicas share. Admission is asynchronous (a shared adapter
/// asks its store); finishing and revoking are not, so that a request's end never waits on them — an
/// adapter that must write queues the write.
public protocol RateLimiting: Sendable {
    /// Admits a request that may use `tokens` (its estimate) under every rule, or throws the refusal.
    func admit(_ rules: [RateLimitRule], tokens: Int) async throws(RateLimitRefusal) -> RateLimitGrant
    /// The request ended: its concurrency slots are free, and its token estimate becomes what it
    /// really used (`nil`: keep the estimate).
    func finish(_ grant: RateLimitGrant, tokens: Int?)
    /// Takes the admission back entirely: the request never ran (refused by its hold, say).
    func revoke(_ grant: RateLimitGrant)
}

public enum RateLimitScope: String, Sendable, CaseIterable {
    case model, account, key
    case endUser = "end_user"
}

public enum RateLimitKind: String, Sendable, CaseIterable {
    case requests, tokens, concurrent
}

/// The limits of one scope that apply to a request; nil fields do not limit.
public struct RateLimitRule: Sendable, Equatable {
    public var scope: RateLimitScope
    /// The model name, account id, key id, or account id + end user.
    public var name: String
    /// How the refusal message names the scope ("the model 'baichuan'", "this account").
    public var label: String
    public var requestsPerMinute: Int?
    public var tokensPerMinute: Int?
    public var concurrent: Int?

    public init(
        scope: RateLimitScope, name: String, label: String, requestsPerMinute: Int? = nil, tokensPerMinute: Int? = nil,
        concurrent: Int? = nil
    ) {
        self.scope = scope
        self.name = name
        self.label = label
        self.requestsPerMinute = requestsPerMinute
        self.tokensPerMinute = tokensPerMinute
        self.concurrent = concurrent
    }

    public var limitsAnything: Bool { requestsPerMinute != nil || tokensPerMinute != nil || concurrent != nil }
}

/// Why a request was refused: the 429 to answer with, and which limit said no (for the metrics).
public struct RateLimitRefusal: Error, Sendable {
    public var scope: RateLimitScope
    public var kind: RateLimitKind
    public var wait: Duration
    public var error: GatewayError

    /// False when no limit refused: the shared state could not be consulted (`unavailable`).
    public var isLimit = true

    public init(scope: RateLimitScope, kind: RateLimitKind, wait: Duration, error: GatewayError) {
        self.scope = scope
        self.kind = kind
        self.wait = wait
        self.error = error
    }

    /// A shared adapter could not reach its store: the request is refused rather than admitted on
    /// counts this process keeps alone (fail closed).
    public static func unavailable() -> RateLimitRefusal {
        var refusal = RateLimitRefusal(
            scope: .account, kind: .requests, wait: .seconds(1),
            error: .databaseUnavailable("check this request's limits"))
        refusal.isLimit = false
        return refusal
    }
}

/// One admitted request's place in the limits, as its adapter needs it back.
public struct RateLimitGrant: Sendable {
    /// The adapter's own id of the admission.
    public var id: UInt64
    /// The scopes it was counted in, and whether it holds a concurrency slot in each.
    public var scopes: [(scope: RateLimitScope, name: String, concurrent: Bool)]
    /// The limits as they stood just after admission, for the response's headers.
    public var snapshot: RateLimitSnapshot
    /// When it was counted (milliseconds in the adapter's epoch) and for how many tokens, so that
    /// finishing or revoking corrects the right bucket.
    public var admittedAt: Int64
    public var tokens: Int

    public init(
        id: UInt64, scopes: [(scope: RateLimitScope, name: String, concurrent: Bool)], snapshot: RateLimitSnapshot,
        admittedAt: Int64 = 0, tokens: Int = 0
    ) {
        self.id = id
        self.scopes = scopes
        self.snapshot = snapshot
        self.admittedAt = admittedAt
        self.tokens = tokens
    }
}

/// The `x-ratelimit-*` headers of a response: the tightest requests and tokens limits that applied.
public struct RateLimitSnapshot: Sendable {
    public var requests: (limit: Int, remaining: Int, reset: Duration)?
    public var tokens: (limit: Int, remaining: Int, reset: Duration)?

    public init() {}

    public var headers: [(name: String, value: String)] {
        var headers: [(name: String, value: String)] = []
        if let requests {
            headers += [
                ("x-ratelimit-limit-requests", "\(requests.limit)"),
                ("x-ratelimit-remaining-requests", "\(requests.remaining)"),
                ("x-ratelimit-reset-requests", Self.format(requests.reset)),
            ]
        }
        if let tokens {
            headers += [
                ("x-ratelimit-limit-tokens", "\(tokens.limit)"),
                ("x-ratelimit-remaining-tokens", "\(tokens.remaining)"),
                ("x-ratelimit-reset-tokens", Self.format(tokens.reset)),
            ]
        }
        return headers
    }

    /// OpenAI's duration format for the reset headers: `250ms`, `12s`, `1m30s`.
    public static func format(_ duration: Duration) -> String {
        let millis = duration.millis
        if millis < 1000 { return "\(millis)ms" }
        let seconds = (millis + 999) / 1000
        return seconds < 60 ? "\(seconds)s" : "\(seconds / 60)m\(seconds % 60)s"
    }
}

/// One admitted request's hold on the limits; `finish` or `revoke` it once (dropping it finishes it,
/// keeping the estimate).
public final class Admission: Sendable {
    private let limiter: any RateLimiting
    private let grant: RateLimitGrant
    private let done = Atomic<Bool>(false)

    public init(limiter: any RateLimiting, grant: RateLimitGrant) {
        self.limiter = limiter
        self.grant = grant
    }

    public var snapshot: RateLimitSnapshot { grant.snapshot }

    public func finish(tokens: Int?) {
        guard !done.exchange(true, ordering: .acquiringAndReleasing) else { return }
        limiter.finish(grant, tokens: tokens)
    }

    public func revoke() {
        guard !done.exchange(true, ordering: .acquiringAndReleasing) else { return }
        limiter.revoke(grant)
    }

    deinit { finish(tokens: nil) }
}
