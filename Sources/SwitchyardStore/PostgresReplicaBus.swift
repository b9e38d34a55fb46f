import Logging
import NIOCore
import PostgresKit
import SQLKit
import ServiceLifecycle
import SwitchyardCore
import Synchronization

/// `ReplicaBus` over PostgreSQL: events are NOTIFY payloads on one channel (`ReplicaWire`), sent on
/// a pooled connection and received on a dedicated one that LISTENs. NOTIFY is transactional and
/// delivered to every listening session within milliseconds, which is what carries a stop to the
/// replica running the request (well under the 100 ms the issue asks) and a revocation to every
/// cache (under a second).
///
/// While the listening connection is down the bus says so (`isConnected`): the authenticator stops
/// trusting its cache and `/ready` answers 503, and the connection is made again (every 250 ms to
/// 1 s). When it is back, `.resynchronized` tells subscribers that events may have been missed. A
/// connection that stops answering is noticed by a ping every `pingInterval`.
public final class PostgresReplicaBus: ReplicaBus, Service {
    private let configuration: PostgresConnection.Configuration
    private let runner: any TransactionRunner
    private let instance: String
    private let pingInterval: Duration
    private let eventLoopGroup: any EventLoopGroup
    private let logger: Logger
    private let connected = Atomic(false)
    /// Connections made so far (the backoff starts over after one that worked).
    private let openings = Atomic(0)
    private let handlers = Mutex<[@Sendable (ReplicaEvent) -> Void]>([])

    init(
        configuration: PostgresConnection.Configuration, runner: any TransactionRunner, instance: String,
        pingInterval: Duration, eventLoopGroup: any EventLoopGroup, logger: Logger
    ) {
        self.configuration = configuration
        self.runner = runner
        self.instance = instance
        self.pingInterval = pingInterval
        self.eventLoopGroup = eventLoopGroup
        self.logger = logger
    }

    public var isConnected: Bool { connected.load(ordering: .acquiring) }

    public func publish(_ event: ReplicaEvent) async throws {
        let payload = ReplicaWire.encode(event, from: instance)
        try await runner.read { database in
            try await database.raw("SELECT pg_notify(\(bind: ReplicaWire.channel), \(bind: payload))").run()
        }
    }

    public func subscribe(_ handler: @escaping @Sendable (ReplicaEvent) -> Void) {
        handlers.withLock { $0.append(handler) }
    }

    public func runningElsewhere(id: String, accountID: String) async throws -> RunningElsewhere? {
        let instance = self.instance
        return try await runner.read { database in
            try await database.raw(
                """
                SELECT model, started_at, instance FROM ledger
                WHERE request_id = \(bind: id) AND account_id = \(bind: accountID) AND status = 'running'
                    AND instance <> \(bind: instance)
                """
            ).all().first.map { row in
                RunningElsewhere(
                    model: try row.decode(column: "model", as: String.self),
                    created: Int(try row.decode(column: "started_at", as: Int64.self) / 1000),
                    instance: try row.decode(column: "instance", as: String.self))
            }
        }
    }

    public func runningElsewhere(accountID: String, endUser: String) async throws -> Int {
        let instance = self.instance
        return try await runner.read { database in
            try await database.raw(
                """
                SELECT COUNT(*) AS running FROM ledger
                WHERE account_id = \(bind: accountID) AND status = 'running' AND COALESCE(end_user, '') = \(bind: endUser)
                    AND instance <> \(bind: instance)
                    AND request_id NOT IN (SELECT request_id FROM tasks WHERE finished_at IS NULL)
                """
            ).all().first?.decode(column: "running", as: Int.self) ?? 0
        }
    }

    private func deliver(_ event: ReplicaEvent) {
        for handler in handlers.withLock({ $0 }) { handler(event) }
    }

    private func receive(_ payload: String) {
        guard let (event, from) = ReplicaWire.decode(payload) else {
            logger.debug("ignored a replica event this version does not know")
            return
        }
        // Our own stops were applied here before they were sent.
        if from == instance { return }
        deliver(event)
    }

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            var backoff = Duration.milliseconds(250)
            while !Task.isCancelled {
                let opened = self.openings.load(ordering: .relaxed)
                defer { if self.openings.load(ordering: .relaxed) != opened { backoff = .milliseconds(250) } }
                do {
                    try await self.listenOnce()
                } catch is CancellationError {
                    break
                } catch {
                    if !Task.isCancelled {
                        self.logger.warning(
                            "lost the replicas' notification channel; reconnecting",
                            metadata: ["error": "\(String(reflecting: error))"])
                    }
                }
                self.connected.store(false, ordering: .releasing)
                if Task.isCancelled { break }
                try? await Task.sleep(for: backoff)
                backoff = min(backoff * 2, .seconds(1))
            }
        }
        connected.store(false, ordering: .releasing)
    }

    /// One connection's life: LISTEN, deliver, ping; returns or throws when it ends.
    private func listenOnce() async throws {
        let connection = try await PostgresConnection.connect(
            on: eventLoopGroup.any(), configuration: configuration, id: 1, logger: logger)
        do {
            try await connection.listen(on: ReplicaWire.channel) { notifications in
                self.openings.add(1, ordering: .relaxed)
                self.connected.store(true, ordering: .releasing)
                self.deliver(.resynchronized)
                self.logger.debug("listening for the other replicas' events")
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask {
                        for try await notification in notifications { self.receive(notification.payload) }
                        throw SQLStoreError.closed
                    }
                    group.addTask {
                        while true {
                            try await Task.sleep(for: self.pingInterval)
                            try await self.ping(connection)
                        }
                    }
                    defer { group.cancelAll() }
                    try await group.next()
                }
            }
        } catch {
            self.connected.store(false, ordering: .releasing)
            try? await connection.close()
            throw error
        }
        self.connected.store(false, ordering: .releasing)
        try? await connection.close()
    }

    /// `SELECT 1` on the listening connection, or a timeout: a connection that stopped answering
    /// (a cut network sends no reset) must not pass for a live one.
    private func ping(_ connection: PostgresConnection) async throws {
        try await withThrowingTaskGroup(of: Bool.self) { group in
            group.addTask {
                _ = try await connection.query("SELECT 1", logger: self.logger).collect()
                return true
            }
            group.addTask {
                try await Task.sleep(for: max(self.pingInterval, .seconds(1)))
                return false
            }
            defer { group.cancelAll() }
            guard try await group.next() == true else { throw SQLStoreError.closed }
        }
    }
}

/// What several replicas on one PostgreSQL database share besides the store: the limiter, the bus,
/// and the heartbeat that keeps both honest. Nil for SQLite.
public struct SharedState: Sendable {
    public let limiter: any RateLimiting
    public let bus: any ReplicaBus
    /// Run them after the store and before the application (ServiceLifecycle stops in reverse).
    public let services: [any Service]
    let heartbeat: ReplicaHeartbeat

    /// Before serving: a replica restarted under the same name gives back at once the slots its
    /// previous life held (its rows are released by `recoverInterrupted` the same way), rather than
    /// when their leases expire.
    public func prepare() async throws {
        try await heartbeat.forgetPreviousLife()
    }
}

extension SQLBillingStore {
    /// The shared limiter, bus and heartbeat over this store's PostgreSQL database; nil on SQLite,
    /// where one process is all there is. `heartbeat` is how often a replica renews its leases and
    /// pings the listening connection; `deadAfter`, how long a replica may go unseen before another
    /// releases what it held.
    public func sharedState(
        instance: String, heartbeat: Duration, deadAfter: Duration, eventLoopGroup: any EventLoopGroup
    ) -> SharedState? {
        guard let configuration = postgresConfiguration else { return nil }
        let limiter = PostgresRateLimiter(runner: runner, instance: instance, lease: deadAfter, logger: logger)
        let bus = PostgresReplicaBus(
            configuration: configuration.coreConfiguration, runner: runner, instance: instance, pingInterval: heartbeat,
            eventLoopGroup: eventLoopGroup, logger: logger)
        let beat = ReplicaHeartbeat(
            runner: runner, instance: instance, interval: heartbeat, deadAfter: deadAfter, limiter: limiter, logger: logger)
        return SharedState(limiter: limiter, bus: bus, services: [limiter, bus, beat], heartbeat: beat)
    }
}
