import Foundation
import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle
import SwitchyardCore
import SwitchyardUpstream

/// What the application needs from outside, so that tests can hand in their own.
public struct GatewayDependencies: Sendable {
    public var eventLoopGroup: any EventLoopGroup
    public var logger: Logger

    public init(eventLoopGroup: any EventLoopGroup, logger: Logger) {
        self.eventLoopGroup = eventLoopGroup
        self.logger = logger
    }
}

/// The composition root: builds the providers, the routes and the HTTP server from a validated config.
public func buildApplication(
    config: Config,
    dependencies: GatewayDependencies,
    onServerRunning: @escaping @Sendable (any Channel) async -> Void = { _ in }
) -> some ApplicationProtocol {
    let providers = Providers(configs: config.providers, eventLoopGroup: dependencies.eventLoopGroup)
    let connections = ClientConnections()
    let catalog = Catalog(models: config.models)
    let relay = Relay(
        catalog: catalog, providers: providers, connections: connections, maxBodyBytes: config.server.maxBodyBytes)

    let router = Router(context: GatewayRequestContext.self)
    router.add(middleware: OpenAIErrorMiddleware())
    router.get("/") { _, _ in
        Relay.json(["service": "switchyard", "api": "/v1", "models": "/v1/models"])
    }
    let v1 = router.group("v1")
    ModelsController(catalog: catalog, created: Int(Date().timeIntervalSince1970)).addRoutes(to: v1)
    v1.post("chat/completions") { request, context in
        try await relay.handle(.chatCompletions, request: request, context: context)
    }
    v1.post("completions") { request, context in
        try await relay.handle(.completions, request: request, context: context)
    }
    v1.post("embeddings") { request, context in
        try await relay.handle(.embeddings, request: request, context: context)
    }

    return Application(
        router: router,
        server: .http1(configuration: .init(additionalChannelHandlers: [connections.makeHandler()])),
        configuration: .init(
            address: .hostname(config.server.host, port: config.server.port),
            serverName: "switchyard"
        ),
        services: [providers],
        onServerRunning: onServerRunning,
        eventLoopGroupProvider: .shared(dependencies.eventLoopGroup),
        logger: dependencies.logger
    )
}
