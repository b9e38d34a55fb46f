/// The gateway's whole configuration, parsed and validated once at start-up (see `docs/CONFIG.md`).
public struct Config: Sendable {
    public var server: Server
    /// `sqlite:FILE` (embedded default) or `postgres://…`.
    public var database: String
    /// Bearer token for the admin API; `nil` when unset.
    public var adminKey: String?
    /// trace, debug, info, notice, warning, error, critical.
    public var logLevel: String
    public var providers: [ProviderConfig]
    public var models: [ModelConfig]

    public init(
        server: Server = .init(),
        database: String = "sqlite:switchyard.sqlite",
        adminKey: String? = nil,
        logLevel: String = "info",
        providers: [ProviderConfig] = [],
        models: [ModelConfig] = []
    ) {
        self.server = server
        self.database = database
        self.adminKey = adminKey
        self.logLevel = logLevel
        self.providers = providers
        self.models = models
    }

    public struct Server: Sendable, Equatable {
        public var host: String
        public var port: Int
        /// Larger request bodies are refused with 413 before they are read in full.
        public var maxBodyBytes: Int
        /// How long in-flight requests may run on after SIGTERM/SIGINT before the gateway closes.
        public var shutdownGrace: Duration

        public init(
            host: String = "127.0.0.1",
            port: Int = 8080,
            maxBodyBytes: Int = 8 * 1024 * 1024,
            shutdownGrace: Duration = .seconds(30)
        ) {
            self.host = host
            self.port = port
            self.maxBodyBytes = maxBodyBytes
            self.shutdownGrace = shutdownGrace
        }
    }
}

/// An upstream connection: where requests for a deployment go and how to talk to it.
public struct ProviderConfig: Sendable, Equatable {
    public enum Kind: String, Sendable, CaseIterable {
        /// Any OpenAI-compatible HTTP server (OpenAI, vLLM, llama.cpp, Ollama, another gateway).
        case openai
        /// The built-in deterministic model: no network, for trying the gateway offline and load tests.
        case test
    }

    /// Whether the upstream can stream.
    public enum StreamMode: String, Sendable, CaseIterable {
        /// Streams when asked, answers whole when not.
        case native
        /// Cannot stream: the gateway asks for whole answers and streams them to clients itself.
        case none
        /// Only streams: the gateway always asks for a stream and assembles whole answers itself.
        case always
    }

    public struct Timeouts: Sendable, Equatable {
        /// Establishing the TCP (and TLS) connection.
        public var connect: Duration
        /// From sending the request to the response head (and, when streaming, its first event).
        public var firstByte: Duration
        /// Longest silence between two pieces of a response once it has started.
        public var idle: Duration

        public init(connect: Duration = .seconds(10), firstByte: Duration = .seconds(120), idle: Duration = .seconds(60)) {
            self.connect = connect
            self.firstByte = firstByte
            self.idle = idle
        }
    }

    /// Behaviour of the built-in `test` provider.
    public struct TestModel: Sendable, Equatable {
        /// Tokens in each answer (fewer when the request's `max_tokens` is lower).
        public var tokens: Int
        /// Delay before each streamed token.
        public var tokenDelay: Duration

        public init(tokens: Int = 16, tokenDelay: Duration = .milliseconds(20)) {
            self.tokens = tokens
            self.tokenDelay = tokenDelay
        }
    }

    public var name: String
    public var kind: Kind
    /// Base URL up to and including the API version, e.g. `http://127.0.0.1:8000/v1`.
    public var baseURL: String
    /// Sent as `Authorization: Bearer …` when set.
    public var apiKey: String?
    public var stream: StreamMode
    public var timeouts: Timeouts
    /// Upper bound on open connections to this upstream.
    public var maxConnections: Int
    /// Extra headers sent with every upstream request (e.g. an organisation id).
    public var headers: [String: String]
    public var test: TestModel

    public init(
        name: String,
        kind: Kind,
        baseURL: String = "",
        apiKey: String? = nil,
        stream: StreamMode = .native,
        timeouts: Timeouts = .init(),
        maxConnections: Int = 64,
        headers: [String: String] = [:],
        test: TestModel = .init()
    ) {
        self.name = name
        self.kind = kind
        self.baseURL = baseURL
        self.apiKey = apiKey
        self.stream = stream
        self.timeouts = timeouts
        self.maxConnections = maxConnections
        self.headers = headers
        self.test = test
    }
}

/// A public catalog entry clients call by name.
public struct ModelConfig: Sendable, Equatable {
    public struct Deployment: Sendable, Equatable {
        /// Name of a provider in `providers`.
        public var provider: String
        /// The model id the upstream knows; defaults to the public name.
        public var model: String

        public init(provider: String, model: String) {
            self.provider = provider
            self.model = model
        }
    }

    public var name: String
    public var description: String?
    /// Context window in tokens.
    public var context: Int?
    /// Largest completion the model produces.
    public var maxOutputTokens: Int?
    public var aliases: [String]
    public var ownedBy: String
    /// Which endpoints the model serves: chat, completions, embeddings.
    public var endpoints: Set<Endpoint>
    public var deployments: [Deployment]
    /// List price, before the account's multiplier.
    public var price: Price
    /// For per-second prices: the longest generation a hold reserves for (and that is billed).
    public var maxSeconds: Int

    public init(
        name: String,
        description: String? = nil,
        context: Int? = nil,
        maxOutputTokens: Int? = nil,
        aliases: [String] = [],
        ownedBy: String = "switchyard",
        endpoints: Set<Endpoint> = [.chatCompletions, .completions],
        deployments: [Deployment],
        price: Price = .free,
        maxSeconds: Int = 300
    ) {
        self.name = name
        self.description = description
        self.context = context
        self.maxOutputTokens = maxOutputTokens
        self.aliases = aliases
        self.ownedBy = ownedBy
        self.endpoints = endpoints
        self.deployments = deployments
        self.price = price
        self.maxSeconds = maxSeconds
    }
}
