import Foundation
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import SwitchyardCore
import SwitchyardStore

/// Runs the gateway until SIGTERM or SIGINT. Before serving it migrates the database, releases the
/// holds a crash left behind and, on a first start, creates the demo account (announcing its key
/// once). On the signal the server stops accepting connections, requests in flight (streams
/// included) get `server.shutdown_grace` to finish, then whatever is left is cancelled and the
/// process exits; the database closes last.
public func serve(
    config: Config, logger: Logger, announce: @escaping @Sendable (String) -> Void, onRunning: @escaping @Sendable (Int) -> Void
) async throws {
    let eventLoopGroup = MultiThreadedEventLoopGroup(numberOfThreads: System.coreCount)
    let store = try await SQLBillingStore.open(url: config.database, logger: logger, eventLoopGroup: eventLoopGroup)
    let instance = "\(ProcessInfo.processInfo.hostName):\(config.server.port)"
    let prepared: Bootstrap.Outcome
    do {
        prepared = try await Bootstrap.prepare(config: config, store: store, instance: instance)
    } catch {
        await store.close()
        throw error
    }
    prepared.announcements.forEach(announce)
    let app = buildApplication(
        config: config,
        dependencies: .init(
            eventLoopGroup: eventLoopGroup, logger: logger, store: store, instance: instance,
            adminDigest: prepared.adminDigest),
        onServerRunning: { channel in onRunning(channel.localAddress?.port ?? config.server.port) }
    )
    var configuration = ServiceGroupConfiguration(
        services: [.init(service: store), .init(service: app)],
        gracefulShutdownSignals: [.sigterm, .sigint],
        cancellationSignals: [],
        logger: logger
    )
    configuration.maximumGracefulShutdownDuration = config.server.shutdownGrace
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
