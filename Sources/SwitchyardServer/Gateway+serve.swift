import Foundation
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import SwitchyardCore
import SwitchyardStore

/// Runs the gateway until SIGTERM or SIGINT. Before serving it migrates the database, releases the
/// holds a crash left behind and, on a first start, creates the demo account (announcing its key
/// once). On the signal the gateway drains: `/ready` and new requests get 503 while requests in
/// flight (streams included) get `server.shutdown_grace` to finish; those still running then are
/// stopped and settled for what they delivered; then the server closes, and the database last.
public func serve(
    config: Config, logger: Logger, metrics: GatewayMetrics = GatewayMetrics(),
    announce: @escaping @Sendable (String) -> Void, onRunning: @escaping @Sendable (Int) -> Void
) async throws {
    let eventLoopGroup = MultiThreadedEventLoopGroup(numberOfThreads: System.coreCount)
    let store = try await SQLBillingStore.open(
        url: config.database, logger: logger.heldAtDebug, eventLoopGroup: eventLoopGroup)
    let instance = "\(ProcessInfo.processInfo.hostName):\(config.server.port)"
    let prepared: Bootstrap.Outcome
    do {
        prepared = try await Bootstrap.prepare(config: config, store: store, instance: instance)
    } catch {
        await store.close()
        throw error
    }
    prepared.announcements.forEach(announce)
    let lifecycle = GatewayLifecycle()
    // On PostgreSQL, limits, stops, revocations and cooldowns are shared with the other replicas.
    let shared = store.sharedState(
        instance: instance, heartbeat: config.replicas.heartbeat, deadAfter: config.replicas.deadAfter,
        eventLoopGroup: eventLoopGroup)
    do {
        try await shared?.prepare()
    } catch {
        await store.close()
        throw error
    }
    let app = buildApplication(
        config: config,
        dependencies: .init(
            eventLoopGroup: eventLoopGroup, logger: logger, store: store, instance: instance,
            adminDigest: prepared.adminDigest, metrics: metrics, lifecycle: lifecycle, limiter: shared?.limiter,
            bus: shared?.bus ?? LocalReplicaBus()),
        onServerRunning: { channel in onRunning(channel.localAddress?.port ?? config.server.port) }
    )
    let grace = config.server.shutdownGrace
    // Shut down in reverse: the drain first (the server still answers, with 503), then the server,
    // then the shared limiter, bus and heartbeat (when replicas share PostgreSQL), then the ledger
    // writer (writing the settlements of the requests that just ended), then the database.
    var configuration = ServiceGroupConfiguration(
        services: [.init(service: store), .init(service: store.ledgerWriter)]
            + (shared?.services ?? []).map { ServiceGroupConfiguration.ServiceConfiguration(service: $0) } + [
            .init(service: app),
            .init(service: DrainService(lifecycle: lifecycle, grace: grace, logger: logger)),
        ],
        gracefulShutdownSignals: [.sigterm, .sigint],
        cancellationSignals: [],
        logger: logger
    )
    // The backstop: should stopped requests not settle in time, the process exits anyway (their rows
    // stay `running` and are released as interrupted at the next start).
    configuration.maximumGracefulShutdownDuration = grace + DrainService.settleAllowance + .seconds(5)
    let group = ServiceGroup(configuration: configuration)
    try await group.run()
    try await eventLoopGroup.shutdownGracefully()
}

/// Opens the configured database and migrates it, for the CLI's administrative commands.
public func openStore(config: Config, logger: Logger) async throws -> SQLBillingStore {
    let store = try await SQLBillingStore.open(url: config.database, logger: logger, eventLoopGroup: MultiThreadedEventLoopGroup.singleton)
    do {
        try await store.migrate()
    } catch {
        await store.close()
        throw error
    }
    return store
}
