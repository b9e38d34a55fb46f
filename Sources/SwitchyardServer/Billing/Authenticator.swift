import Foundation
import Synchronization
import SwitchyardCore

/// Who is calling: the key and its account.
struct Caller: Sendable {
    var key: APIKey
    var account: Account

    /// Whether this caller may use the model, by the key's and the account's allow-lists.
    func mayUse(_ model: ModelConfig) -> Bool {
        let names = [model.name] + model.aliases
        func allows(_ list: [String]?) -> Bool { list.map { allowed in names.contains(where: allowed.contains) } ?? true }
        return allows(key.models) && allows(account.models)
    }
}

/// Turns a presented key into a `Caller`, or the OpenAI error for why not. Lookups are cached for a
/// few seconds so a busy key does not cost a database query per request; revoking a key or changing
/// an account drops its entries at once here, and on the other replicas when the store's NOTIFY
/// reaches them (milliseconds; while it cannot, they do not use their caches at all).
///
/// A key that names nothing is remembered for as long (`unknown`): a client retrying with a wrong or
/// placeholder key, or a seed-style path segment that is not a key (tried before the bearer header),
/// costs a hash and a lookup here instead of a query each time — the query was most of a refused
/// request's cost, four times an accepted one's. Issued secrets are random, so no key can appear
/// that was presented before it existed; one made here is forgotten as unknown all the same.
final class Authenticator: Sendable {
    private struct Entry {
        var key: APIKey
        var account: Account
        var fetched: ContinuousClock.Instant
    }

    private let store: any BillingStore
    private let ttl: Duration
    private let clock: any GatewayClock
    private let cache = Mutex<[[UInt8]: Entry]>([:])
    /// Digests the store had no key for, and when it said so; at most `maxUnknown`.
    private let unknown = Mutex<[[UInt8]: ContinuousClock.Instant]>([:])
    static let maxUnknown = 10_000
    /// Whether cached lookups can be trusted now: with several replicas, only while their events
    /// (revocations, suspensions, limit changes) reach this one; otherwise every call reads the store.
    private let cacheTrusted: @Sendable () -> Bool

    init(
        store: any BillingStore, ttl: Duration = .seconds(5), clock: any GatewayClock = SystemClock(),
        cacheTrusted: @escaping @Sendable () -> Bool = { true }
    ) {
        self.store = store
        self.ttl = ttl
        self.clock = clock
        self.cacheTrusted = cacheTrusted
    }

    func authenticate(_ presented: String?) async throws -> Caller {
        guard let presented, !presented.isEmpty else {
            throw GatewayError.invalidAPIKey(
                "You didn't provide an API key. Provide it as 'Authorization: Bearer YOUR_KEY'.")
        }
        let digest = Secrets.hash(presented)
        let now = clock.now
        let trusted = cacheTrusted()
        var found = cache.withLock { cache -> (APIKey, Account)? in
            guard trusted, let entry = cache[digest], now - entry.fetched < ttl else { return nil }
            return (entry.key, entry.account)
        }
        if found == nil, !(trusted && isKnownUnknown(digest, now: now)) {
            if let record = try await lookUp(digest) {
                found = (record.key, record.account)
                cache.withLock { cache in
                    if cache.count > 100_000 { cache.removeAll() }
                    cache[digest] = Entry(key: record.key, account: record.account, fetched: now)
                }
            } else {
                unknown.withLock { unknown in
                    if unknown.count >= Self.maxUnknown { unknown.removeAll() }
                    unknown[digest] = now
                }
            }
        }
        guard let (key, account) = found, Secrets.constantTimeEqual(key.hash, digest) else {
            throw GatewayError.invalidAPIKey("Incorrect API key provided.")
        }
        let seconds = clock.unixSeconds
        if key.revokedAt != nil { throw GatewayError.invalidAPIKey("This API key has been revoked.") }
        if let expiry = key.expiresAt, expiry <= seconds { throw GatewayError.invalidAPIKey("This API key has expired.") }
        if account.status != .active {
            throw GatewayError.accountSuspended(account.id)
        }
        return Caller(key: key, account: account)
    }

    /// The store's answer within 5 s: a database that hangs (a partition sends no reset) must get the
    /// caller a 503, not a wait as long as the pool's.
    private func lookUp(_ digest: [UInt8]) async throws -> (key: APIKey, account: Account)? {
        let store = self.store
        do {
            return try await answered(within: .seconds(5)) {
                try await store.key(hash: digest).map { KeyRecord(key: $0.key, account: $0.account) }
            }.map { ($0.key, $0.account) }
        } catch BillingStoreError.unavailable {
            throw GatewayError.databaseUnavailable("check this API key")
        }
    }

    /// The first of `candidates` that is a valid key. The seed's path-style calls carry the key in
    /// the path, while SDKs always send some bearer token (often a placeholder): either may be the key.
    func authenticate(anyOf candidates: [String?]) async throws -> Caller {
        var firstError: (any Error)?
        for candidate in candidates where candidate?.isEmpty == false {
            do {
                return try await authenticate(candidate)
            } catch let error as GatewayError where error.code == "invalid_api_key" {
                firstError = firstError ?? error
            }
        }
        throw firstError ?? GatewayError.invalidAPIKey(
            "You didn't provide an API key. Provide it as 'Authorization: Bearer YOUR_KEY'.")
    }

    func forget(keyID: String) {
        cache.withLock { cache in cache = cache.filter { $0.value.key.id != keyID } }
    }

    func forget(accountID: String) {
        cache.withLock { cache in cache = cache.filter { $0.value.account.id != accountID } }
    }

    func forgetAll() {
        cache.withLock { $0.removeAll() }
        unknown.withLock { $0.removeAll() }
    }

    /// The store said it had no key for `digest` less than `ttl` ago.
    private func isKnownUnknown(_ digest: [UInt8], now: ContinuousClock.Instant) -> Bool {
        unknown.withLock { unknown in unknown[digest].map { now - $0 < ttl } ?? false }
    }

    /// A key was just made with this digest: it is no longer unknown.
    func forgetUnknown(digest: [UInt8]) {
        _ = unknown.withLock { $0.removeValue(forKey: digest) }
    }

    /// What the other replicas say of keys and accounts.
    func apply(_ event: ReplicaEvent) {
        switch event {
        case .forgetKey(let id): forget(keyID: id)
        case .forgetAccount(let id): forget(accountID: id)
        case .resynchronized: forgetAll()
        default: break
        }
    }
}

extension GatewayError {
    static func invalidAPIKey(_ message: String) -> GatewayError {
        GatewayError(status: 401, message: message, type: "invalid_request_error", code: "invalid_api_key")
    }

    static func accountSuspended(_ accountID: String) -> GatewayError {
        GatewayError(
            status: 403, message: "The account '\(accountID)' is suspended.", type: "invalid_request_error",
            code: "account_suspended")
    }

    static func modelNotAllowed(_ model: String) -> GatewayError {
        GatewayError(
            status: 403, message: "This key is not allowed to use the model '\(model)'.",
            type: "invalid_request_error", param: "model", code: "model_not_allowed")
    }

    static func insufficientQuota(needed: Money, available: Money) -> GatewayError {
        GatewayError(
            status: 402,
            message:
                "Insufficient balance: this request may cost up to \(needed) and \(available) is available. "
                + "Top up the account or lower max_tokens.",
            type: "insufficient_quota", code: "insufficient_quota")
    }
}

/// A key and its account as one Sendable value, across the lookup's task.
private struct KeyRecord: Sendable {
    var key: APIKey
    var account: Account
}
