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
    /// Accounts, keys, holds and the ledger (migrated and recovered by the caller).
    public var store: any BillingStore
    /// Names this process in ledger rows (`host:port` by default).
    public var instance: String
    /// SHA-256 of the admin key; nil disables the admin API.
    public var adminDigest: [UInt8]?
    /// Where the gateway's metrics go and `/metrics` reads them from.
    public var metrics: GatewayMetrics
    /// Serving, draining or stopping; `DrainService` drives it at shutdown.
    public var lifecycle: GatewayLifecycle
    /// Where time is read (billing, auth, routing, limits); tests pass a `ManualClock`.
    public var clock: any GatewayClock
    /// How providers are made, by kind.
    public var providerFactory: ProviderFactory
    /// The limits' adapter; nil: this process's own (`InMemoryRateLimiter`). Several replicas on one
    /// PostgreSQL database pass the shared one (`SQLBillingStore.sharedState`).
    public var limiter: (any RateLimiting)?
    /// How replicas reach each other (stops, revocations, cooldowns); alone, nobody.
    public var bus: any ReplicaBus

    public init(
        eventLoopGroup: any EventLoopGroup, logger: Logger, store: any BillingStore, instance: String,
        adminDigest: [UInt8]?, metrics: GatewayMetrics = GatewayMetrics(), lifecycle: GatewayLifecycle = GatewayLifecycle(),
        clock: any GatewayClock = SystemClock(), providerFactory: ProviderFactory = .standard,
        limiter: (any RateLimiting)? = nil, bus: any ReplicaBus = LocalReplicaBus()
    ) {
        self.limiter = limiter
        self.bus = bus
        self.clock = clock
        self.providerFactory = providerFactory
        self.eventLoopGroup = eventLoopGroup
        self.logger = logger
        self.store = store
        self.instance = instance
        self.adminDigest = adminDigest
        self.metrics = metrics
        self.lifecycle = lifecycle
    }
}

/// The composition root: builds the providers, the routes and the HTTP server from a validated config.
public func buildApplication(
    config: Config,
    dependencies: GatewayDependencies,
    onServerRunning: @escaping @Sendable (any Channel) async -> Void = { _ in }
) -> some ApplicationProtocol {
    let providers = Providers(
        configs: config.providers, eventLoopGroup: dependencies.eventLoopGroup, factory: dependencies.providerFactory,
        engines: config.engines, clock: dependencies.clock, logger: dependencies.logger,
        engineObserver: dependencies.metrics)
    let connections = ClientConnections()
    let catalog = Catalog(models: config.models)
    let clock = dependencies.clock
    let bus = dependencies.bus
    let authenticator = Authenticator(store: dependencies.store, clock: clock, cacheTrusted: { bus.isConnected })
    let billing = Billing(
        store: dependencies.store, authenticator: authenticator, instance: dependencies.instance,
        metrics: dependencies.metrics, lifecycle: dependencies.lifecycle, clock: clock)
    let inFlight = InFlight(shutdown: dependencies.lifecycle.stopping)
    var configuredRelay = Relay(
        catalog: catalog, connections: connections, billing: billing, inFlight: inFlight,
        maxBodyBytes: config.server.maxBodyBytes,
        router: DeploymentRouter(catalog: catalog, providers: providers, config: config.routing, clock: clock),
        limits: Limits(config: config.limits, limiter: dependencies.limiter ?? InMemoryRateLimiter(clock: clock)),
        clock: clock,
        loadingNotice: config.server.loadingNoticeInterval)
    let fileStore = dependencies.store as? any FileStore
    let uploads = fileStore.map { Uploads(store: $0, settings: config.files, clock: clock) }
    configuredRelay.uploads = uploads
    configuredRelay.audioUploadLimit = config.audio.maxUploadBytes
    let relay = configuredRelay
    // What the other replicas say reaches the requests, the key cache and the cooldowns here; a
    // cooldown that begins here reaches them.
    let stops = Stops(inFlight: inFlight, bus: bus)
    let cooldowns = relay.router.cooldowns
    bus.subscribe { event in
        stops.apply(event)
        authenticator.apply(event)
        if case .cooldown(let deployment, let millis) = event { cooldowns.cool(deployment, for: .milliseconds(millis)) }
    }
    let logger = dependencies.logger
    cooldowns.onCooled { deployment, duration in
        Task {
            do {
                try await bus.publish(.cooldown(deployment: deployment, millis: duration.millis))
            } catch {
                logger.warning("a cooldown was not shared with the other replicas", metadata: ["deployment": "\(deployment)"])
            }
        }
    }
    let taskRelay = (dependencies.store as? any TaskStore).map { store in
        TaskRelay(
            catalog: catalog, router: configuredRelay.router, authenticator: authenticator, billing: billing, tasks: store,
            limits: configuredRelay.limits, maxBodyBytes: config.server.maxBodyBytes, logger: dependencies.logger)
    }
    let watchesTasks = config.models.contains { $0.endpoints.contains(.midjourney) }
    let services: [any Service] =
        providers.services
        + (fileStore.map {
            [UploadSweeper(store: $0, retention: config.files.retention, clock: clock, logger: dependencies.logger)]
        } ?? [])
        + (taskRelay.map { watchesTasks ? [TaskWatcher(relay: $0, logger: dependencies.logger)] : [] } ?? [])

    let router = Router(context: GatewayRequestContext.self)
    router.add(
        middleware: RequestTrackingMiddleware(
            lifecycle: dependencies.lifecycle, metrics: dependencies.metrics, logger: dependencies.logger))
    router.add(middleware: OpenAIErrorMiddleware())
    ConsoleController().addRoutes(to: router)
    let v1 = router.group("v1")
    let models = ModelsController(
        catalog: catalog, authenticator: authenticator, publicCatalog: config.publicModels, created: Int(clock.unixSeconds))
    models.addRoutes(to: v1)
    SeedRoutes(relay: relay, models: models, stops: stops, authenticator: authenticator).addRoutes(to: router)
    v1.post("chat/completions") { request, context in
        try await relay.handle(.chatCompletions, request: request, context: context)
    }
    v1.post("completions") { request, context in
        try await relay.handle(.completions, request: request, context: context)
    }
    v1.post("embeddings") { request, context in
        try await relay.handle(.embeddings, request: request, context: context)
    }
    AgentRoutes(relay: relay, stops: stops, authenticator: authenticator, catalog: catalog, router: relay.router)
        .addRoutes(to: router)
    let media: [(String, Endpoint)] = [
        ("images/generations", .imageGenerations), ("images/edits", .imageEdits),
        ("images/variations", .imageVariations), ("audio/speech", .speech), ("audio/transcriptions", .transcriptions),
        ("audio/translations", .translations),
    ]
    for (path, endpoint) in media {
        v1.post(RouterPath(path)) { request, context in
            try await relay.handle(endpoint, request: request, context: context)
        }
    }
    if let uploads { FilesController(uploads: uploads, authenticator: authenticator, relay: relay).addRoutes(to: router) }
    taskRelay?.addRoutes(to: router)
    AccountController(authenticator: authenticator, store: dependencies.store, limits: config.limits).addRoutes(to: router)
    OperationsController(
        store: dependencies.store, lifecycle: dependencies.lifecycle, metrics: dependencies.metrics,
        metricsDigest: config.metricsToken.map(Secrets.hash), bus: bus
    ).addRoutes(to: router)
    AdminController(
        accounts: Accounts(store: dependencies.store, authenticator: authenticator, clock: clock), store: dependencies.store,
        gate: AdminGate(digest: dependencies.adminDigest), models: models
    ).addRoutes(to: router)
    EnginesController(engines: providers.engines, models: config.models, gate: AdminGate(digest: dependencies.adminDigest))
        .addRoutes(to: router)

    return Application(
        responder: TaskPerRequest(inner: router.buildResponder()),
        server: .loopBoundHTTP1(configuration: .init(additionalChannelHandlers: [connections.makeHandler()])),
        configuration: .init(
            address: .hostname(config.server.host, port: config.server.port),
            serverName: "switchyard"
        ),
        // The engine supervisor runs among the application's services, after `providers`: services
        // stop in reverse, after the HTTP server, so engines stop once no request can reach them
        // and before the HTTP clients close; tests driving the application get the same.
        services: services,
        onServerRunning: onServerRunning,
        eventLoopGroupProvider: .shared(dependencies.eventLoopGroup),
        logger: dependencies.logger
    )
}
