import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import SwitchyardCore

/// Runs the gateway until SIGTERM or SIGINT. On the signal the server stops accepting connections,
/// requests in flight (streams included) get `server.shutdown_grace` to finish, then whatever is
/// left is cancelled and the process exits.
public func serve(config: Config, logger: Logger, onRunning: @escaping @Sendable (Int) -> Void = { _ in }) async throws {
    let eventLoopGroup = MultiThreadedEventLoopGroup(numberOfThreads: System.coreCount)
    let app = buildApplication(
        config: config,
        dependencies: .init(eventLoopGroup: eventLoopGroup, logger: logger),
        onServerRunning: { channel in onRunning(channel.localAddress?.port ?? config.server.port) }
    )
    var configuration = ServiceGroupConfiguration(
        services: [app],
        gracefulShutdownSignals: [.sigterm, .sigint],
        cancellationSignals: [],
        logger: logger
    )
    configuration.maximumGracefulShutdownDuration = config.server.shutdownGrace
    let group = ServiceGroup(configuration: configuration)
    try await group.run()
    try await eventLoopGroup.shutdownGracefully()
}
