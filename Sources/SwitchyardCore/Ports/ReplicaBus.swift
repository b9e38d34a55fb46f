import Synchronization

/// What one replica tells the others that share its database: stop a request, forget a cached key
/// or account, skip a deployment. Nothing in an event is a prompt, a completion or a key.
public enum ReplicaEvent: Sendable, Equatable {
    /// Stop the request with this response id, if the account runs it here.
    case stopRequest(id: String, accountID: String)
    /// Stop every running request of the account's end user (`""`: those without one).
    case stopEndUser(accountID: String, endUser: String)
    /// A key was revoked or changed: drop its cached lookup.
    case forgetKey(id: String)
    /// An account was suspended or changed (its limits, its allow-list): drop its cached lookups.
    case forgetAccount(id: String)
    /// The deployment failed and is cooling down for this long.
    case cooldown(deployment: String, millis: Int64)
    /// Delivered locally when the channel to the others (re)opens: events may have been missed
    /// while it was closed, so whatever was cached from before must be dropped.
    case resynchronized
}

/// A request running on another replica, as the shared ledger records it.
public struct RunningElsewhere: Sendable, Equatable {
    public var model: String
    /// Unix seconds.
    public var created: Int
    public var instance: String

    public init(model: String, created: Int, instance: String) {
        self.model = model
        self.created = created
        self.instance = instance
    }
}

/// The shared-state port beside `RateLimiting`: how replicas reach each other. `LocalReplicaBus` is
/// the adapter for one process (there is nobody to tell); `PostgresReplicaBus` (SwitchyardStore)
/// carries events over PostgreSQL's LISTEN/NOTIFY and answers from the shared ledger.
public protocol ReplicaBus: Sendable {
    /// Whether events from the others reach this process now. While they cannot, what this process
    /// caches (key lookups) must not be trusted, and a balancer should not send it traffic.
    var isConnected: Bool { get }
    /// Tells every other replica; returns once the event is on its way (committed to the channel).
    func publish(_ event: ReplicaEvent) async throws
    /// `handler` receives the events the others publish (never this replica's own), and
    /// `.resynchronized`. Register before the bus runs.
    func subscribe(_ handler: @escaping @Sendable (ReplicaEvent) -> Void)
    /// The request if another replica runs it for the account.
    func runningElsewhere(id: String, accountID: String) async throws -> RunningElsewhere?
    /// How many requests of the account's end user (`""`: without one) other replicas run.
    func runningElsewhere(accountID: String, endUser: String) async throws -> Int
}

/// One process alone: nothing to tell, nothing running elsewhere.
public final class LocalReplicaBus: ReplicaBus {
    public init() {}
    public var isConnected: Bool { true }
    public func publish(_ event: ReplicaEvent) async throws {}
    public func subscribe(_ handler: @escaping @Sendable (ReplicaEvent) -> Void) {}
    public func runningElsewhere(id: String, accountID: String) async throws -> RunningElsewhere? { nil }
    public func runningElsewhere(accountID: String, endUser: String) async throws -> Int { 0 }
}
