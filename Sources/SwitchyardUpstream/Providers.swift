import AsyncHTTPClient
import Logging
import NIOCore
import ServiceLifecycle
import SwitchyardCore

/// Every configured provider, built once, with the HTTP clients behind them. As a `Service` it owns
/// those clients' lifetime: they shut down when the service group does, after the server stopped.
public final class Providers: Service, Sendable {
    private let byName: [String: any Provider]
    private let clients: [HTTPClient]

    public init(configs: [ProviderConfig], eventLoopGroup: any EventLoopGroup) {
        var byName: [String: any Provider] = [:]
        var clients: [HTTPClient] = []
        for config in configs {
            switch config.kind {
            case .test:
                byName[config.name] = TestProvider(config: config)
            case .openai:
                var configuration = HTTPClient.Configuration()
                configuration.timeout = .init(connect: .init(config.timeouts.connect))
                configuration.connectionPool = .init(
                    idleTimeout: .seconds(60),
                    concurrentHTTP1ConnectionsPerHostSoftLimit: config.maxConnections
                )
                // A refused connection fails the attempt at once, so routing can move to the next
                // deployment instead of waiting out `timeouts.connect`.
                configuration.connectionPool.retryConnectionEstablishment = false
                configuration.decompression = .disabled
                configuration.redirectConfiguration = .disallow
                let client = HTTPClient(eventLoopGroupProvider: .shared(eventLoopGroup), configuration: configuration)
                clients.append(client)
                byName[config.name] = OpenAIProvider(config: config, client: client)
            }
        }
        self.byName = byName
        self.clients = clients
    }

    public subscript(name: String) -> (any Provider)? {
        byName[name]
    }

    public func run() async throws {
        try? await gracefulShutdown()
        await shutdown()
    }

    public func shutdown() async {
        for client in clients { try? await client.shutdown() }
    }
}
