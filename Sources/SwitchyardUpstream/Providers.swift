import AsyncHTTPClient
import Logging
import NIOCore
import ServiceLifecycle
import SwitchyardCore
import Synchronization

/// How providers of one kind are made. A new kind of upstream adds an entry to `ProviderFactory`'s
/// table; nothing else switches on kinds.
public struct ProviderFactory: Sendable {
    /// What a provider may need to be made: the event loops, and an HTTP client whose lifetime
    /// `Providers` then owns (shut down with the service group).
    public struct Context: Sendable {
        public var eventLoopGroup: any EventLoopGroup
        let clients: ClientRegistry
        /// Runs the engines of `managed` providers.
        public let engines: EngineSupervisor

        /// An HTTP client configured for one upstream (its connect timeout and pool size).
        public func httpClient(for config: ProviderConfig) -> HTTPClient {
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
            // No tracing: with the default (no-op) tracer the client still made a span and its
            // attributes on every request, about 2 % of a request's CPU (issue 15's profile).
            configuration.tracing.tracer = nil
            let client = HTTPClient(eventLoopGroupProvider: .shared(eventLoopGroup), configuration: configuration)
            clients.add(client)
            return client
        }
    }

    public typealias Make = @Sendable (ProviderConfig, Context) -> any Provider

    public var makers: [ProviderConfig.Kind: Make]

    public init(makers: [ProviderConfig.Kind: Make]) {
        self.makers = makers
    }

    /// The kinds this build serves.
    public static let standard = ProviderFactory(makers: [
        .test: { config, _ in TestProvider(config: config) },
        .openai: { config, context in OpenAIProvider(config: config, client: context.httpClient(for: config)) },
        .anthropic: { config, context in AnthropicProvider(config: config, client: context.httpClient(for: config)) },
        .managed: { config, context in
            ManagedProvider(
                config: config, http: OpenAIProvider(config: config, client: context.httpClient(for: config)),
                supervisor: context.engines)
        },
    ])
}

/// The HTTP clients made for providers, to shut down at the end.
final class ClientRegistry: Sendable {
    private let clients = Mutex<[HTTPClient]>([])

    func add(_ client: HTTPClient) { clients.withLock { $0.append(client) } }
    var all: [HTTPClient] { clients.withLock { $0 } }
}

/// Every configured provider, built once by `ProviderFactory`, with the HTTP clients behind them. As
/// a `Service` it owns those clients' lifetime: they shut down when the service group does, after the
/// server stopped.
public final class Providers: Service, Sendable {
    private let byName: [String: any Provider]
    private let clients: ClientRegistry
    /// The managed engines' supervisor (inert when there are none).
    public let engines: EngineSupervisor

    /// `.standard` makes every kind the config accepts; a factory without a kind leaves its providers out.
    public init(
        configs: [ProviderConfig], eventLoopGroup: any EventLoopGroup, factory: ProviderFactory = .standard,
        engines settings: EnginesConfig = .init(), clock: any GatewayClock = SystemClock(),
        logger: Logger = Logger(label: "switchyard.engines"), engineObserver: (any EngineObserver)? = nil
    ) {
        let clients = ClientRegistry()
        let managed = configs.filter { $0.kind == .managed && factory.makers[.managed] != nil }
        // Only with engines to check: an HTTP client must be shut down, which needs `run()`.
        let health = managed.isEmpty ? nil : HTTPClient(eventLoopGroupProvider: .shared(eventLoopGroup))
        if let health { clients.add(health) }
        let engines = EngineSupervisor(
            configs: managed, settings: settings, clock: clock, logger: logger, observer: engineObserver, http: health,
            eventLoopGroup: eventLoopGroup)
        let context = ProviderFactory.Context(eventLoopGroup: eventLoopGroup, clients: clients, engines: engines)
        var byName: [String: any Provider] = [:]
        for config in configs {
            guard let make = factory.makers[config.kind] else { continue }
            byName[config.name] = make(config, context)
        }
        self.byName = byName
        self.clients = clients
        self.engines = engines
    }

    /// What the application runs: this (the HTTP clients' lifetime) and, when there are managed
    /// engines, their supervisor after it, so that it stops first and the engines are gone before the
    /// clients close.
    public var services: [any Service] {
        engines.isEmpty ? [self] : [self, engines]
    }

    public subscript(name: String) -> (any Provider)? {
        byName[name]
    }

    public func run() async throws {
        try? await gracefulShutdown()
        await shutdown()
    }

    public func shutdown() async {
        for client in clients.all { try? await client.shutdown() }
    }
}
