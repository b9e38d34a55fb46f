import Foundation
import SwitchyardCore
import Yams

/// Reads `switchyard.yaml` into a validated `Config`. Every problem names its key and line; the
/// first one stops start-up (and `switchyard check-config`).
public enum ConfigLoader {
    public static func load(path: String, environment: [String: String]) throws(ConfigError) -> Config {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw ConfigError(file: path, key: "", line: nil, message: "cannot read the file (\(error.localizedDescription))")
        }
        do {
            return try parse(yaml: text, environment: environment)
        } catch var error {
            error.file = path
            throw error
        }
    }

    public static func parse(yaml: String, environment: [String: String]) throws(ConfigError) -> Config {
        let root: Node
        do {
            guard let node = try Yams.compose(yaml: yaml) else {
                throw ConfigError(key: "", line: nil, message: "the file is empty")
            }
            root = node
        } catch let error as ConfigError {
            throw error
        } catch let error as YamlError {
            throw ConfigError(key: "", line: nil, message: "not valid YAML: \(error)")
        } catch {
            throw ConfigError(key: "", line: nil, message: "not valid YAML: \(error)")
        }
        return try read(ConfigNode(node: root, path: "", environment: environment))
    }

    static func read(_ root: ConfigNode) throws(ConfigError) -> Config {
        let fields = try root.fields([
            "server", "database", "admin_key", "log_level", "log_format", "metrics_token", "providers", "models",
            "routing", "limits", "public_models", "demo", "engines", "files", "audio", "replicas",
        ])
        var config = Config()
        if let replicas = fields["replicas"] {
            let values = try replicas.fields(["heartbeat", "dead_after"])
            if let value = values["heartbeat"] { config.replicas.heartbeat = try positive(value) }
            if let value = values["dead_after"] {
                config.replicas.deadAfter = try positive(value)
                guard config.replicas.deadAfter >= config.replicas.heartbeat * 2 else {
                    throw value.error("must be at least twice replicas.heartbeat, or a live replica could be taken for dead")
                }
            }
        }
        if let files = fields["files"] {
            let values = try files.fields(["max_bytes", "retention", "delete_after_use", "max_per_account"])
            if let value = values["max_per_account"] { config.files.maxPerAccount = try value.int(in: 1...1_000_000) }
            if let value = values["max_bytes"] { config.files.maxBytes = try value.int(in: 1...1_073_741_824) }
            if let value = values["retention"] { config.files.retention = try positive(value) }
            if let value = values["delete_after_use"] { config.files.deleteAfterUse = try value.bool() }
        }
        if let audio = fields["audio"] {
            let values = try audio.fields(["max_upload_bytes"])
            if let value = values["max_upload_bytes"] { config.audio.maxUploadBytes = try value.int(in: 1...1_073_741_824) }
        }
        if let server = fields["server"] { config.server = try readServer(server) }
        if let database = fields["database"] {
            let value = try database.string()
            guard value.hasPrefix("sqlite:") || value.hasPrefix("postgres://") || value.hasPrefix("postgresql://") else {
                throw database.error("expected sqlite:FILE or postgres://user:password@host:port/database")
            }
            config.database = value
        }
        // The environment variable counts even when the file does not mention it.
        config.adminKey = try fields["admin_key"]?.optionalString() ?? root.environment["SWITCHYARD_ADMIN_KEY"].flatMap { $0.isEmpty ? nil : $0 }
        let levels = ["trace", "debug", "info", "notice", "warning", "error", "critical"]
        if let level = fields["log_level"] {
            let value = try level.string().lowercased()
            guard levels.contains(value) else { throw level.error("expected one of \(levels.joined(separator: ", "))") }
            config.logLevel = value
        }
        // The environment overrides the file, so an operator can turn up logging without editing it.
        if let value = root.environment["LOG_LEVEL"]?.lowercased(), !value.isEmpty {
            guard levels.contains(value) else {
                throw ConfigError(key: "LOG_LEVEL (environment)", line: nil, message: "expected one of \(levels.joined(separator: ", "))")
            }
            config.logLevel = value
        }
        if let format = fields["log_format"] {
            let value = try format.string().lowercased()
            guard let parsed = Config.LogFormat(rawValue: value) else { throw format.error("expected text or json") }
            config.logFormat = parsed
        }
        config.metricsToken = try fields["metrics_token"]?.optionalString()
        guard let providers = fields["providers"] else {
            throw root.error("'providers' is required: name at least one upstream (kind: openai, managed or test)")
        }
        for (name, node) in try providers.mapping() { config.providers.append(try readProvider(name, node)) }
        guard let models = fields["models"] else { throw root.error("'models' is required: name at least one model") }
        let providerNames = Set(config.providers.map(\.name))
        var taken: [String: String] = [:]
        let modelEntries = try models.mapping()
        let modelNames = Set(modelEntries.map(\.key))
        for (name, node) in modelEntries {
            let model = try readModel(name, node, providers: providerNames, models: modelNames)
            for alias in [name] + model.aliases {
                if let owner = taken[alias] {
                    throw node.error("'\(alias)' is already the name or an alias of model '\(owner)'")
                }
                taken[alias] = name
            }
            config.models.append(model)
        }
        if let routing = fields["routing"] { config.routing = try readRouting(routing) }
        if let limits = fields["limits"] { config.limits = try readLimits(limits) }
        if let publicModels = fields["public_models"] { config.publicModels = try publicModels.bool() }
        if let demo = fields["demo"] { config.demo = try readDemo(demo) }
        if let engines = fields["engines"] { config.engines = try readEngines(engines) }
        return config
    }

    /// `tokenizer: {kind: llama-cpp-python, chat_template: chatml}`; `chat_template: none` (an engine
    /// whose template is not ChatML) asks nothing, and the estimates stand.
    static func readTokenizer(_ node: ConfigNode) throws(ConfigError) -> ProviderConfig.Tokenizer {
        let fields = try node.fields(["kind", "chat_template"])
        guard let kindNode = fields["kind"] else { throw node.error("'kind' is required (llama-cpp-python or llama-server)") }
        guard let kind = ProviderConfig.Tokenizer.Kind(rawValue: try kindNode.string()) else {
            throw kindNode.error("expected llama-cpp-python or llama-server")
        }
        var tokenizer = ProviderConfig.Tokenizer(kind: kind)
        if let template = fields["chat_template"] {
            let text = try template.string()
            if text == "none" {
                tokenizer.chatTemplate = nil
            } else {
                guard let value = ChatTemplate(rawValue: text) else { throw template.error("expected chatml or none") }
                tokenizer.chatTemplate = value
            }
        }
        return tokenizer
    }

    /// `demo: {account: test, key: test, balance: "10.00", requests_per_minute: 10, concurrent: 2}`.
    static func readDemo(_ node: ConfigNode) throws(ConfigError) -> Config.Demo {
        let fields = try node.fields([
            "account", "key", "balance", "requests_per_minute", "tokens_per_minute", "concurrent",
        ])
        var demo = Config.Demo()
        if let account = fields["account"] {
            demo.account = try account.string()
            guard (try? Accounts.validateID(demo.account)) != nil else {
                throw account.error("expected 1–64 letters, digits, '-', '_' or '.'")
            }
        }
        if let key = fields["key"] {
            demo.key = try key.string()
            guard !demo.key.isEmpty, demo.key.utf8.count <= 256, !demo.key.contains(where: \.isWhitespace) else {
                throw key.error("expected a non-empty key without spaces")
            }
        }
        if let balance = fields["balance"] {
            guard let money = Money(try balance.string()), money >= .zero else {
                throw balance.error("expected a non-negative amount such as \"10.00\"")
            }
            demo.balance = money
        }
        // Given limits replace the defaults as a whole, so `demo: {requests_per_minute: 100}` means
        // exactly that; with none given the defaults (10 per minute, 2 at once) apply.
        let limits = try readCallerLimits(fields: fields)
        if !limits.isEmpty { demo.limits = limits }
        return demo
    }

    static func readServer(_ node: ConfigNode) throws(ConfigError) -> Config.Server {
        let fields = try node.fields(["host", "port", "max_body_bytes", "shutdown_grace", "loading_notice_interval"])
        var server = Config.Server()
        if let host = fields["host"] { server.host = try host.string() }
        if let port = fields["port"] { server.port = try port.int(in: 0...65535) }
        if let size = fields["max_body_bytes"] { server.maxBodyBytes = try size.int(in: 1024...1_073_741_824) }
        if let grace = fields["shutdown_grace"] { server.shutdownGrace = try grace.duration() }
        if let interval = fields["loading_notice_interval"] {
            server.loadingNoticeInterval = try interval.duration()
            guard server.loadingNoticeInterval >= .milliseconds(100) else { throw interval.error("expected at least 100ms") }
        }
        return server
    }

    static func readProvider(_ name: String, _ node: ConfigNode) throws(ConfigError) -> ProviderConfig {
        let fields = try node.fields([
            "kind", "base_url", "api_key", "stream", "timeouts", "max_connections", "max_queue", "headers", "tokens",
            "token_delay", "tokenizer", "responses", "anthropic",
        ] + managedKeys)
        guard let kindNode = fields["kind"] else {
            throw node.error("'kind' is required (openai, anthropic, managed or test)")
        }
        let kindText = try kindNode.string()
        guard let kind = ProviderConfig.Kind(rawValue: kindText) else {
            throw kindNode.error("unknown kind '\(kindText)' (expected openai, anthropic, managed or test)")
        }
        var provider = ProviderConfig(name: name, kind: kind)
        switch kind {
        case .openai, .anthropic:
            guard let urlNode = fields["base_url"] else { throw node.error("'base_url' is required for kind \(kind)") }
            let url = try urlNode.string()
            guard let parsed = URL(string: url), ["http", "https"].contains(parsed.scheme ?? ""), parsed.host != nil else {
                throw urlNode.error("expected an http:// or https:// URL such as http://127.0.0.1:8000/v1")
            }
            provider.baseURL = url
        case .test:
            for key in ["base_url", "api_key"] where fields[key] != nil {
                throw fields[key].map { $0.error("not used by kind test") } ?? node.error("")
            }
        case .managed:
            if let url = fields["base_url"] {
                throw url.error("not used by kind managed: the gateway picks the port (${PORT} in 'command')")
            }
            provider.managed = try readManaged(node, fields)
            provider.baseURL = "http://127.0.0.1:${PORT}/v1"
        }
        for key in managedKeys where kind != .managed && fields[key] != nil {
            throw fields[key].map { $0.error("only used by kind managed") } ?? node.error("")
        }
        provider.apiKey = try fields["api_key"]?.optionalString()
        if let stream = fields["stream"] {
            let text = try stream.string()
            guard let mode = ProviderConfig.StreamMode(rawValue: text) else {
                throw stream.error("expected native, none or always")
            }
            provider.stream = mode
        }
        if let timeouts = fields["timeouts"] {
            let values = try timeouts.fields(["connect", "first_byte", "idle", "total"])
            if let value = values["connect"] { provider.timeouts.connect = try positive(value) }
            if let value = values["first_byte"] { provider.timeouts.firstByte = try positive(value) }
            if let value = values["idle"] { provider.timeouts.idle = try positive(value) }
            if let value = values["total"] { provider.timeouts.total = try positive(value) }
        }
        if let value = fields["max_connections"] { provider.maxConnections = try value.int(in: 1...10_000) }
        if let value = fields["max_queue"] { provider.maxQueue = try value.int(in: kind == .managed ? 1...1_000_000 : 0...1_000_000) }
        for key in ["max_connections", "max_queue"] where kind == .test && fields[key] != nil {
            throw fields[key].map { $0.error("not used by kind test") } ?? node.error("")
        }
        if let value = fields["headers"] { provider.headers = try value.stringMap() }
        if let value = fields["tokenizer"] {
            guard kind != .test else { throw value.error("not used by kind test") }
            provider.tokenizer = try readTokenizer(value)
        }
        for key in ["tokens", "token_delay"] where kind != .test && fields[key] != nil {
            throw fields[key].map { $0.error("only used by kind test") } ?? node.error("")
        }
        if let value = fields["tokens"] { provider.test.tokens = try value.int(in: 0...100_000) }
        if let value = fields["token_delay"] { provider.test.tokenDelay = try value.duration() }
        if let value = fields["responses"] {
            guard kind == .openai || kind == .managed else { throw value.error("only used by kinds openai and managed") }
            guard let mode = ProviderConfig.ResponsesMode(rawValue: try value.string()) else {
                throw value.error("expected translate or native")
            }
            provider.responses = mode
        }
        if let value = fields["anthropic"] {
            guard kind == .anthropic else { throw value.error("only used by kind anthropic") }
            let values = try value.fields(["version", "default_max_tokens"])
            if let version = values["version"] { provider.anthropic.version = try version.string() }
            if let tokens = values["default_max_tokens"] { provider.anthropic.defaultMaxTokens = try tokens.int(in: 1...1_000_000) }
        }
        return provider
    }

    static func positive(_ node: ConfigNode) throws(ConfigError) -> Duration {
        let value = try node.duration()
        guard value > .zero else { throw node.error("must be longer than zero") }
        return value
    }

    static func readModel(_ name: String, _ node: ConfigNode, providers: Set<String>, models: Set<String> = [])
        throws(ConfigError) -> ModelConfig
    {
        let fields = try node.fields([
            "description", "context", "max_output_tokens", "aliases", "owned_by", "endpoints", "deployments", "price",
            "fallbacks", "limits", "max_tokens_overflow",
        ])
        guard let deploymentsNode = fields["deployments"] else {
            throw node.error("'deployments' is required: list at least one {provider, model}")
        }
        var deployments: [ModelConfig.Deployment] = []
        for element in try deploymentsNode.sequence() {
            let values = try element.fields(["provider", "model", "priority", "weight"])
            guard let providerNode = values["provider"] else { throw element.error("'provider' is required") }
            let provider = try providerNode.string()
            guard providers.contains(provider) else {
                throw providerNode.error("no provider named '\(provider)' under 'providers'")
            }
            let deployment = ModelConfig.Deployment(
                provider: provider, model: try values["model"]?.string() ?? name,
                priority: try values["priority"]?.int(in: 0...1_000_000) ?? 0,
                weight: try values["weight"]?.int(in: 1...1_000_000) ?? 1)
            guard !deployments.contains(where: { $0.id == deployment.id }) else {
                throw element.error("'\(deployment.id)' is listed twice")
            }
            deployments.append(deployment)
        }
        guard !deployments.isEmpty else { throw deploymentsNode.error("list at least one deployment") }
        var model = ModelConfig(name: name, deployments: deployments)
        model.description = try fields["description"]?.optionalString()
        model.context = try fields["context"]?.int(in: 1...100_000_000)
        model.maxOutputTokens = try fields["max_output_tokens"]?.int(in: 1...100_000_000)
        model.aliases = try fields["aliases"]?.stringList() ?? []
        if let owner = fields["owned_by"] { model.ownedBy = try owner.string() }
        if let fallbacks = fields["fallbacks"] {
            model.fallbacks = try fallbacks.stringList()
            for fallback in model.fallbacks {
                guard models.contains(fallback) else {
                    throw fallbacks.error("no model named '\(fallback)' under 'models' (fallbacks name models, not aliases)")
                }
                guard fallback != name else { throw fallbacks.error("a model cannot fall back to itself") }
            }
            guard Set(model.fallbacks).count == model.fallbacks.count else { throw fallbacks.error("a model is listed twice") }
        }
        if let limits = fields["limits"] {
            let values = try limits.fields(["requests_per_minute", "concurrent"])
            model.limits.requestsPerMinute = try values["requests_per_minute"]?.int(in: 1...100_000_000)
            model.limits.concurrent = try values["concurrent"]?.int(in: 1...1_000_000)
        }
        if let priceNode = fields["price"] { (model.price, model.maxSeconds) = try readPrice(priceNode) }
        if let overflow = fields["max_tokens_overflow"] {
            guard let value = ModelConfig.MaxTokensOverflow(rawValue: try overflow.string()) else {
                throw overflow.error("expected reject or clamp")
            }
            model.maxTokensOverflow = value
        }
        if let endpointsNode = fields["endpoints"] {
            var endpoints: Set<Endpoint> = []
            for element in try endpointsNode.sequence() {
                let text = try element.string()
                guard let named = Endpoint.named(inConfig: text) else {
                    let names = Endpoint.configNames.joined(separator: ", ")
                    throw element.error("unknown endpoint '\(text)' (expected one of \(names))")
                }
                endpoints.formUnion(named)
            }
            guard !endpoints.isEmpty else { throw endpointsNode.error("list at least one endpoint") }
            model.endpoints = endpoints
        }
        // A price must count what the model's endpoints deliver, or requests would go unbilled.
        let media = model.endpoints.filter { $0.output == .media }
        if model.price.isMedia, media.count != model.endpoints.count {
            throw (fields["price"] ?? node).error(
                "an image, characters or audio_second price bills only images, speech, transcriptions or translations: "
                    + "set endpoints to those")
        }
        if case .perImage = model.price, media.contains(where: { !$0.name.hasPrefix("image") }) {
            throw (fields["price"] ?? node).error("an image price bills only the images endpoints")
        }
        if model.endpoints.contains(.midjourney) {
            guard model.endpoints == [.midjourney] else {
                throw (fields["endpoints"] ?? node).error("midjourney is served alone: a model of drawing tasks serves nothing else")
            }
            switch model.price {
            case .perAction, .free: break
            default: throw (fields["price"] ?? node).error("drawing tasks are priced per action: price: {action: {IMAGINE: \"0.1\", \"*\": \"0.05\"}}")
            }
        } else if case .perAction = model.price {
            throw (fields["price"] ?? node).error("an action price bills only drawing tasks: set endpoints: [midjourney]")
        }
        if !model.price.isMedia, model.price != .free, case .tokens = model.price, model.endpoints.contains(.speech) {
            throw (fields["price"] ?? node).error(
                "speech reports no tokens: price it per 1M characters (characters) or per second of audio (audio_second)")
        }
        return model
    }

    /// `{input: "0.04", output: "0.04"}` per 1K tokens, `{second: "0.015", max_seconds: 300}` or
    /// `{request: "0.01"}`; amounts are decimal strings (numbers are accepted too) parsed exactly.
    static func readPrice(_ node: ConfigNode) throws(ConfigError) -> (Price, Int) {
        let fields = try node.fields([
            "input", "output", "second", "max_seconds", "request", "image", "characters", "audio_second", "action",
        ])
        func amount(_ key: String) throws(ConfigError) -> Int64? {
            guard let value = fields[key] else { return nil }
            guard let nanos = Price.nanos(try value.string()) else {
                throw value.error("expected a non-negative decimal amount with at most 9 decimals, such as \"0.042\"")
            }
            return nanos
        }
        let input = try amount("input")
        let output = try amount("output")
        let second = try amount("second")
        let request = try amount("request")
        let characters = try amount("characters")
        let audioSecond = try amount("audio_second")
        func rates(_ key: String, what: String) throws(ConfigError) -> [String: Int64]? {
            guard let node = fields[key] else { return nil }
            var rates: [String: Int64] = [:]
            for (name, value) in try node.mapping() {
                guard let nanos = Price.nanos(try value.string()) else {
                    throw value.error("expected a non-negative decimal amount with at most 9 decimals, such as \"0.04\"")
                }
                rates[name] = nanos
            }
            guard !rates.isEmpty else { throw node.error("name at least one \(what) or * price") }
            return rates
        }
        let images = try rates("image", what: "SIZE/QUALITY, SIZE")
        let actions = try rates("action", what: "action (IMAGINE, UPSCALE, …)")
        let kinds = [
            input != nil || output != nil, second != nil, request != nil, characters != nil, audioSecond != nil,
            images != nil, actions != nil,
        ].filter { $0 }.count
        guard kinds == 1 else {
            throw node.error(
                "give one of input/output (per 1K tokens), second (per second of generation), request (per request), "
                    + "image (per image), characters (per 1M characters), audio_second (per second of audio) "
                    + "or action (per drawing task)")
        }
        let maxSeconds = try fields["max_seconds"]?.int(in: 1...86_400) ?? 300
        if fields["max_seconds"] != nil && second == nil && audioSecond == nil {
            throw fields["max_seconds"].map { $0.error("only used with a per-second price") } ?? node.error("")
        }
        if let images { return (.perImage(images), maxSeconds) }
        if let actions { return (.perAction(actions), maxSeconds) }
        if let characters { return (.perMillionCharacters(characters), maxSeconds) }
        if let audioSecond { return (.perAudioSecond(audioSecond), maxSeconds) }
        if let second { return (.perSecond(second), maxSeconds) }
        if let request { return (.perRequest(request), maxSeconds) }
        return (.tokens(inputPer1K: input ?? 0, outputPer1K: output ?? input ?? 0), maxSeconds)
    }
}
