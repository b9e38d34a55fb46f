/// The gateway's whole configuration, parsed and validated once at start-up (see `docs/CONFIG.md`).
public struct Config: Sendable {
    public var server: Server
    /// `sqlite:FILE` (embedded default) or `postgres://…`.
    public var database: String
    /// Bearer token for the admin API; `nil` when unset.
    public var adminKey: String?
    /// trace, debug, info, notice, warning, error, critical.
    public var logLevel: String
    /// How log lines are written: `text` (human) or `json` (one object a line).
    public var logFormat: LogFormat
    /// Bearer token `GET /metrics` requires; `nil` leaves it open.
    public var metricsToken: String?
    public var providers: [ProviderConfig]
    public var models: [ModelConfig]
    /// Retries, backoff, the overall deadline and cooldowns (`routing:`).
    public var routing: RoutingConfig
    /// Per-account, per-key and per-end-user limits (`limits:`); per-model limits live on the model.
    public var limits: LimitsConfig
    /// What applies across managed engines (`engines:`).
    public var engines: EnginesConfig
    /// Whether `GET /v1/models` answers without a key (`public_models:`); by default it needs one.
    public var publicModels: Bool
    /// A public demo key of the operator's choosing (`demo:`), off unless configured.
    public var demo: Demo?
    /// Uploads (`files:`): their size limit and how long they are kept.
    public var files = Files()
    /// Audio uploads for transcription (`audio:`).
    public var audio = Audio()
    /// Several replicas on one PostgreSQL database (`replicas:`); read only with a postgres `database`.
    public var replicas = Replicas()

    /// `replicas:`: how replicas sharing a PostgreSQL database keep track of each other.
    public struct Replicas: Sendable, Equatable {
        /// How often a replica marks itself alive, renews its concurrency slots' leases and checks
        /// its notification channel (`heartbeat`).
        public var heartbeat: Duration
        /// A replica not seen for this long is dead (`dead_after`): its slots' leases have expired and
        /// a survivor releases the holds of the requests it was running (uncharged).
        public var deadAfter: Duration

        public init(heartbeat: Duration = .seconds(1), deadAfter: Duration = .seconds(10)) {
            self.heartbeat = heartbeat
            self.deadAfter = deadAfter
        }
    }

    /// `files:`: uploads for vision and user data (`POST /v1/files`).
    public struct Files: Sendable, Equatable {
        /// Largest upload, in bytes (`max_bytes`).
        public var maxBytes: Int
        /// How long an upload is kept after it was made (`retention`); an upload may ask for less.
        public var retention: Duration
        /// Delete an upload as soon as a request that used it has settled (`delete_after_use`).
        public var deleteAfterUse: Bool
        /// Uploads one account may keep at once (`max_per_account`), so no key can fill the disk.
        public var maxPerAccount: Int

        public init(
            maxBytes: Int = 20 * 1024 * 1024, retention: Duration = .seconds(3600), deleteAfterUse: Bool = false,
            maxPerAccount: Int = 100
        ) {
            self.maxBytes = maxBytes
            self.retention = retention
            self.deleteAfterUse = deleteAfterUse
            self.maxPerAccount = maxPerAccount
        }
    }

    /// `audio:`: transcription and translation uploads.
    public struct Audio: Sendable, Equatable {
        /// Largest multipart body of a transcription or translation, in bytes (`max_upload_bytes`).
        public var maxUploadBytes: Int

        public init(maxUploadBytes: Int = 25 * 1024 * 1024) {
            self.maxUploadBytes = maxUploadBytes
        }
    }

    /// The seed service's demo account (`openid` `test`) with a key anyone may use, under tight limits.
    public struct Demo: Sendable, Equatable {
        /// The account's id (created when missing, with `balance`).
        public var account: String
        /// The key's full text, published on purpose (the seed's examples use `test`).
        public var key: String
        public var balance: Money
        /// The key's own limits (at least one should be set: the key is public).
        public var limits: LimitsConfig.Caller

        public init(account: String = "test", key: String = "test", balance: Money = Money(micros: 10_000_000),
            limits: LimitsConfig.Caller = .init(requestsPerMinute: 10, concurrent: 2)) {
            self.account = account
            self.key = key
            self.balance = balance
            self.limits = limits
        }
    }

    public init(
        server: Server = .init(),
        database: String = "sqlite:switchyard.sqlite",
        adminKey: String? = nil,
        logLevel: String = "info",
        logFormat: LogFormat = .text,
        metricsToken: String? = nil,
        providers: [ProviderConfig] = [],
        models: [ModelConfig] = [],
        routing: RoutingConfig = .init(),
        limits: LimitsConfig = .init(),
        publicModels: Bool = false,
        demo: Demo? = nil,
        engines: EnginesConfig = .init()
    ) {
        self.publicModels = publicModels
        self.demo = demo
        self.server = server
        self.database = database
        self.adminKey = adminKey
        self.logLevel = logLevel
        self.logFormat = logFormat
        self.metricsToken = metricsToken
        self.providers = providers
        self.models = models
        self.routing = routing
        self.limits = limits
        self.engines = engines
    }

    public enum LogFormat: String, Sendable, CaseIterable {
        case text, json
    }

    public struct Server: Sendable, Equatable {
        public var host: String
        public var port: Int
        /// Larger request bodies are refused with 413 before they are read in full.
        public var maxBodyBytes: Int
        /// How long in-flight requests may run on after SIGTERM/SIGINT (the drain); those still
        /// running then are stopped and settled before the gateway closes.
        public var shutdownGrace: Duration
        /// How often a streaming client waiting for a provider to get ready (a managed engine
        /// loading) is sent a `: loading <model>` SSE comment, so that it and proxies see life.
        public var loadingNoticeInterval: Duration

        public init(
            host: String = "127.0.0.1",
            port: Int = 8080,
            maxBodyBytes: Int = 8 * 1024 * 1024,
            shutdownGrace: Duration = .seconds(30),
            loadingNoticeInterval: Duration = .seconds(3)
        ) {
            self.loadingNoticeInterval = loadingNoticeInterval
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
        /// An OpenAI-compatible engine process the gateway starts and stops itself.
        case managed
        /// The Anthropic Messages API (`x-api-key`, `anthropic-version`): Messages requests are passed
        /// through, chat completions and Responses translated.
        case anthropic
    }

    /// How an OpenAI-compatible upstream is sent `/v1/responses` requests.
    public enum ResponsesMode: String, Sendable, CaseIterable {
        /// Translated to chat completions and back (the upstream need not know Responses).
        case translate
        /// Passed through to the upstream's own `/responses`, only `model` rewritten.
        case native
    }

    /// What an `anthropic` provider sends (`anthropic:` in the config).
    public struct Anthropic: Sendable, Equatable {
        /// `anthropic-version`, unless the caller of `/v1/messages` sent its own.
        public var version: String
        /// `max_tokens` for translated requests that set no limit (Anthropic requires one).
        public var defaultMaxTokens: Int

        public init(version: String = "2023-06-01", defaultMaxTokens: Int = 4096) {
            self.version = version
            self.defaultMaxTokens = defaultMaxTokens
        }
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
        /// The whole exchange, from sending the request to the response's last byte; nil = no limit.
        public var total: Duration?

        public init(
            connect: Duration = .seconds(10), firstByte: Duration = .seconds(120), idle: Duration = .seconds(60),
            total: Duration? = nil
        ) {
            self.connect = connect
            self.firstByte = firstByte
            self.idle = idle
            self.total = total
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
    /// Upper bound on open connections to this upstream (and so on requests in flight to it).
    public var maxConnections: Int
    /// Requests that may wait for one of those connections; past this they are refused (503).
    public var maxQueue: Int
    /// Extra headers sent with every upstream request (e.g. an organisation id).
    public var headers: [String: String]
    public var test: TestModel
    /// The engine process of a `managed` provider.
    public var managed: ManagedEngine?
    /// The engine's own tokenizer endpoint, for exact counts where its streams report no usage.
    public var tokenizer: Tokenizer?
    /// `responses:` (kinds openai and managed).
    public var responses: ResponsesMode = .translate
    /// Settings of kind `anthropic`.
    public var anthropic = Anthropic()

    /// The caller dialect this upstream speaks natively besides chat completions: requests in it
    /// are passed through rather than translated.
    public func speaksNatively(_ dialect: Dialect) -> Bool {
        switch dialect {
        case .openAI: kind != .anthropic
        case .responses: kind != .anthropic && kind != .test && responses == .native
        case .anthropic: kind == .anthropic
        }
    }

    /// An engine's tokenizer endpoint (`tokenizer:`), asked after a stream that reported no usage.
    public struct Tokenizer: Sendable, Equatable {
        public enum Kind: String, Sendable, CaseIterable {
            /// llama-cpp-python: `POST /extras/tokenize/count {"input"}` → `{"count"}`.
            case llamaCppPython = "llama-cpp-python"
            /// llama.cpp's `llama-server`: `POST /tokenize {"content", "add_special", "parse_special"}` → `{"tokens"}`.
            case llamaServer = "llama-server"
        }

        public var kind: Kind
        /// How chat messages are rendered for counting the prompt as the engine sees it; `nil`: the
        /// prompt stays estimated and only the completion is counted.
        public var chatTemplate: ChatTemplate?

        public init(kind: Kind, chatTemplate: ChatTemplate? = .chatml) {
            self.kind = kind
            self.chatTemplate = chatTemplate
        }

        /// The endpoint's path below the engine's origin.
        public var path: String { kind == .llamaCppPython ? "/extras/tokenize/count" : "/tokenize" }
    }

    public init(
        name: String,
        kind: Kind,
        baseURL: String = "",
        apiKey: String? = nil,
        stream: StreamMode = .native,
        timeouts: Timeouts = .init(),
        maxConnections: Int = 64,
        maxQueue: Int = 256,
        headers: [String: String] = [:],
        test: TestModel = .init(),
        managed: ManagedEngine? = nil
    ) {
        self.name = name
        self.kind = kind
        self.baseURL = baseURL
        self.apiKey = apiKey
        self.stream = stream
        self.timeouts = timeouts
        self.maxConnections = maxConnections
        self.maxQueue = maxQueue
        self.headers = headers
        self.test = test
        self.managed = managed
    }
}

/// A public catalog entry clients call by name.
public struct ModelConfig: Sendable, Equatable {
    public struct Deployment: Sendable, Equatable {
        /// Name of a provider in `providers`.
        public var provider: String { didSet { id = Self.id(provider, model) } }
        /// The model id the upstream knows; defaults to the public name.
        public var model: String { didSet { id = Self.id(provider, model) } }
        /// `provider/upstream-model`: how ledger rows, logs, cooldowns and metrics name it. Kept, not
        /// computed: the relay reads it several times a request.
        public private(set) var id: String
        /// Lower is tried first; deployments of equal priority share requests by `weight`.
        public var priority: Int
        /// Share of requests among the deployments of the same priority.
        public var weight: Int

        public init(provider: String, model: String, priority: Int = 0, weight: Int = 1) {
            self.provider = provider
            self.model = model
            self.priority = priority
            self.weight = weight
            self.id = Self.id(provider, model)
        }

        private static func id(_ provider: String, _ model: String) -> String { provider + "/" + model }
    }

    /// Limits that protect the model's backends, whoever calls.
    public struct Limits: Sendable, Equatable {
        public var requestsPerMinute: Int?
        public var concurrent: Int?

        public init(requestsPerMinute: Int? = nil, concurrent: Int? = nil) {
            self.requestsPerMinute = requestsPerMinute
            self.concurrent = concurrent
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
    /// Other models tried, in order, when none of this model's deployments could answer.
    public var fallbacks: [String]
    public var limits: Limits
    /// List price, before the account's multiplier.
    public var price: Price
    /// For per-second prices: the longest generation a hold reserves for (and that is billed).
    public var maxSeconds: Int
    /// What a `max_tokens` beyond what the context leaves after the prompt gets (`max_tokens_overflow:`).
    public var maxTokensOverflow: MaxTokensOverflow = .reject

    /// `reject`: 400 `context_length_exceeded`, as OpenAI answers; `clamp`: lowered to what remains.
    public enum MaxTokensOverflow: String, Sendable, Equatable, CaseIterable {
        case reject, clamp
    }

    public init(
        name: String,
        description: String? = nil,
        context: Int? = nil,
        maxOutputTokens: Int? = nil,
        aliases: [String] = [],
        ownedBy: String = "switchyard",
        endpoints: Set<Endpoint> = [.chatCompletions, .completions],
        deployments: [Deployment],
        fallbacks: [String] = [],
        limits: Limits = .init(),
        price: Price = .free,
        maxSeconds: Int = 300
    ) {
        self.fallbacks = fallbacks
        self.limits = limits
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
