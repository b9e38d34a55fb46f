/// One API operation the gateway relays, as a descriptor: where it is served, how its body is read
/// and validated, where its prompt is (for estimates and holds), whether it streams, what its answers
/// look like (for assembling, synthesising and stopping streams) and whether it produces completion
/// tokens to meter. Adding an operation is adding a descriptor (and its route); nothing switches on
/// which one it is.
public struct Endpoint: Sendable, Hashable, CustomStringConvertible {
    /// How a request body is read.
    public enum BodyKind: Sendable, Equatable {
        /// A JSON object (`InferenceRequest`), at most `server.max_body_bytes`.
        case json
        /// `multipart/form-data` (file and audio uploads).
        case multipart
        /// Raw bytes with their content type.
        case bytes
    }

    /// What a choice of the answer carries.
    public enum Output: Sendable, Equatable {
        /// Chat: `message` in a whole answer, `delta` in a chunk.
        case message
        /// Text completions: `text`.
        case text
        /// Embeddings: vectors, no choices, no completion tokens.
        case vectors
        /// Images, audio or a transcription: relayed as the upstream answers, metered in media units
        /// (`MediaUsage`) or the tokens the upstream reports.
        case media
    }

    /// Where the prompt is in the body.
    public enum Prompt: Sendable, Equatable {
        /// A `messages` array; each message costs a little framing beyond its content.
        case messages
        /// One field holding a string, a list of strings or of token ids.
        case field(String)
    }

    /// The name in the config's `endpoints:`, the request log and the metrics (`chat`).
    public let name: String
    /// Path below the provider's base URL (and below `/v1` for callers).
    public let path: String
    /// OpenTelemetry's `gen_ai.operation.name`.
    public let operationName: String
    public let body: BodyKind
    public let output: Output
    public let prompt: Prompt
    public let canStream: Bool
    /// `object` of a whole response and of a stream chunk.
    public let responseObject: String
    public let chunkObject: String
    /// Prefix of the response ids the gateway hands out; answers without an id of their own
    /// (embeddings) are not stamped with one.
    public let idPrefix: String
    public let stampsID: Bool
    /// The operation's own checks of a JSON body, beyond `model`, `stream` and the integer fields.
    public let validate: @Sendable (JSONObject) throws(GatewayError) -> Void

    public var description: String { name }
    /// Whether its answers are generated tokens that are metered as completion.
    public var producesCompletion: Bool { output == .message || output == .text }

    public static func == (lhs: Endpoint, rhs: Endpoint) -> Bool { lhs.name == rhs.name }
    public func hash(into hasher: inout Hasher) { hasher.combine(name) }

    public init(
        name: String, path: String, operationName: String, body: BodyKind = .json, output: Output, prompt: Prompt,
        canStream: Bool, responseObject: String, chunkObject: String, idPrefix: String, stampsID: Bool = true,
        validate: @escaping @Sendable (JSONObject) throws(GatewayError) -> Void
    ) {
        self.name = name
        self.path = path
        self.operationName = operationName
        self.body = body
        self.output = output
        self.prompt = prompt
        self.canStream = canStream
        self.responseObject = responseObject
        self.chunkObject = chunkObject
        self.idPrefix = idPrefix
        self.stampsID = stampsID
        self.validate = validate
    }

    /// Every operation, in the order the catalog lists them.
    public static let all: [Endpoint] = [
        .chatCompletions, .completions, .embeddings, .imageGenerations, .imageEdits, .imageVariations, .speech,
        .transcriptions, .translations, .midjourney,
    ]

    /// The operation named `name`.
    public init?(name: String) {
        guard let found = Self.all.first(where: { $0.name == name }) else { return nil }
        self = found
    }

    /// The operations a config's `endpoints:` entry names: `images` is generations, edits and variations.
    public static func named(inConfig name: String) -> [Endpoint]? {
        if name == "images" { return [.imageGenerations, .imageEdits, .imageVariations] }
        return Endpoint(name: name).map { [$0] }
    }

    /// The names a config's `endpoints:` takes.
    public static let configNames = [
        "chat", "completions", "embeddings", "images", "speech", "transcriptions", "translations", "midjourney",
    ]
}

extension Endpoint {
    public static let chatCompletions = Endpoint(
        name: "chat", path: "/chat/completions", operationName: "chat", output: .message, prompt: .messages,
        canStream: true, responseObject: "chat.completion", chunkObject: "chat.completion.chunk", idPrefix: "chatcmpl-"
    ) { body throws(GatewayError) in
        guard let messages = body["messages"], !messages.isNull else { throw .missingParameter("messages") }
        guard let list = messages.arrayValue else { throw .invalidType("messages", expected: "an array", got: messages) }
        guard !list.isEmpty else {
            throw .invalidValue("messages", "Invalid 'messages': empty array. Expected an array with minimum length 1.")
        }
        for (index, message) in list.enumerated() {
            let name = "messages[\(index)]"
            guard let object = message.objectValue else { throw .invalidType(name, expected: "an object", got: message) }
            guard let role = object["role"], !role.isNull else { throw .missingParameter("\(name).role") }
            guard role.stringValue != nil else { throw .invalidType("\(name).role", expected: "a string", got: role) }
        }
    }

    public static let completions = Endpoint(
        name: "completions", path: "/completions", operationName: "text_completion", output: .text,
        prompt: .field("prompt"), canStream: true, responseObject: "text_completion", chunkObject: "text_completion",
        idPrefix: "cmpl-"
    ) { body throws(GatewayError) in
        try requireTextOrList(body, "prompt")
    }

    public static let embeddings = Endpoint(
        name: "embeddings", path: "/embeddings", operationName: "embeddings", output: .vectors, prompt: .field("input"),
        canStream: false, responseObject: "list", chunkObject: "text_completion", idPrefix: "emb-", stampsID: false
    ) { body throws(GatewayError) in
        try requireTextOrList(body, "input")
    }

    private static func requireTextOrList(_ body: JSONObject, _ name: String) throws(GatewayError) {
        guard let value = body[name], !value.isNull else { throw .missingParameter(name) }
        guard value.stringValue != nil || value.arrayValue != nil else {
            throw .invalidType(name, expected: "a string or an array", got: value)
        }
    }
}

extension Endpoint {
    /// `POST /v1/images/generations`: a JSON body, images (or image events) back.
    public static let imageGenerations = Endpoint(
        name: "images", path: "/images/generations", operationName: "image_generation", output: .media,
        prompt: .field("prompt"), canStream: true, responseObject: "", chunkObject: "", idPrefix: "img-",
        stampsID: false
    ) { body throws(GatewayError) in
        try requireText(body, "prompt")
        try MediaRequest.validateImageCount(body)
    }

    /// `POST /v1/images/edits`: multipart (`image`, `mask`, `prompt`, …).
    public static let imageEdits = Endpoint(
        name: "image_edits", path: "/images/edits", operationName: "image_generation", body: .multipart,
        output: .media, prompt: .field("prompt"), canStream: true, responseObject: "", chunkObject: "",
        idPrefix: "img-", stampsID: false
    ) { body throws(GatewayError) in
        try requireText(body, "prompt")
        try MediaRequest.validateImageCount(body)
    }

    /// `POST /v1/images/variations`: multipart (`image`, `n`, `size`).
    public static let imageVariations = Endpoint(
        name: "image_variations", path: "/images/variations", operationName: "image_generation", body: .multipart,
        output: .media, prompt: .field("prompt"), canStream: false, responseObject: "", chunkObject: "",
        idPrefix: "img-", stampsID: false
    ) { body throws(GatewayError) in
        try MediaRequest.validateImageCount(body)
    }

    /// `POST /v1/audio/speech`: JSON in, audio bytes (or `speech.audio.*` events) out.
    public static let speech = Endpoint(
        name: "speech", path: "/audio/speech", operationName: "text_to_speech", output: .media,
        prompt: .field("input"), canStream: false, responseObject: "", chunkObject: "", idPrefix: "speech-",
        stampsID: false
    ) { body throws(GatewayError) in
        try requireText(body, "input")
    }

    /// `POST /v1/audio/transcriptions`: multipart (`file`, `model`, `response_format`, …).
    public static let transcriptions = Endpoint(
        name: "transcriptions", path: "/audio/transcriptions", operationName: "speech_to_text", body: .multipart,
        output: .media, prompt: .field("prompt"), canStream: true, responseObject: "", chunkObject: "",
        idPrefix: "stt-", stampsID: false
    ) { _ throws(GatewayError) in }

    /// `POST /v1/audio/translations`: as transcriptions, into English.
    public static let translations = Endpoint(
        name: "translations", path: "/audio/translations", operationName: "speech_to_text", body: .multipart,
        output: .media, prompt: .field("prompt"), canStream: false, responseObject: "", chunkObject: "",
        idPrefix: "stt-", stampsID: false
    ) { _ throws(GatewayError) in }

    /// The midjourney-proxy drawing tasks (`/mj/submit/…`, `/mj/task/…`): asynchronous jobs, held at
    /// submission and settled when they end (`TaskRelay`).
    public static let midjourney = Endpoint(
        name: "midjourney", path: "/mj", operationName: "image_generation", output: .media, prompt: .field("prompt"),
        canStream: false, responseObject: "", chunkObject: "", idPrefix: "", stampsID: false
    ) { _ throws(GatewayError) in }

    private static func requireText(_ body: JSONObject, _ name: String) throws(GatewayError) {
        guard let value = body[name], !value.isNull else { throw .missingParameter(name) }
        guard value.stringValue != nil else { throw .invalidType(name, expected: "a string", got: value) }
    }
}
