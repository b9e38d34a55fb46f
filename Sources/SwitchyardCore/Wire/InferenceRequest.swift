/// A client's inference request body, checked for the fields the gateway itself relies on. Every
/// other field is left exactly as sent, to be forwarded.
public struct InferenceRequest: Sendable {
    public var endpoint: Endpoint
    public var body: JSONObject
    public var model: String
    /// The client asked for a stream.
    public var stream: Bool
    /// The client asked for the usage chunk at the end of a stream.
    public var includeUsage: Bool
    /// The API the caller speaks; `body` is always chat completions (or the OpenAI operation itself).
    public var dialect: Dialect = .openAI
    /// The caller's own body when its dialect is not OpenAI's: passed through to upstreams that
    /// speak it, and echoed in Responses objects.
    public var original: JSONObject?
    /// The caller's headers that go with a passed-through request (`anthropic-version`, `anthropic-beta`).
    public var passthroughHeaders: [(name: String, value: String)] = []
    /// A multipart request's form (image edits, transcriptions): `body` then holds its text fields.
    public var form: MultipartForm?
    /// The worst case of a media request in media units (n images of the asked size and quality, the
    /// input's characters, the uploaded audio's length), for its hold; nil for other requests.
    public var mediaEstimate: MediaUsage?

    /// The API the caller used, as the ledger and the request log name it (`chat`, `responses`, `messages`…).
    public var api: String { dialect.nativeEndpoint?.name ?? endpoint.name }

    /// A Responses or Messages request (`bytes`), translated to chat completions.
    /// `passesThrough(model)` says whether the model's first deployment speaks the dialect: then what
    /// cannot be translated is left out of the chat body rather than refused.
    public init(
        dialect: Dialect, bytes: [UInt8], modelOverride: String? = nil, headers: [(name: String, value: String)] = [],
        passesThrough: (String) -> Bool = { _ in false }
    ) throws(GatewayError) {
        var original = try Self.object(bytes)
        if let modelOverride, !modelOverride.isEmpty { original["model"] = .string(modelOverride) }
        guard let model = original["model"], !model.isNull else { throw .missingParameter("model") }
        guard let modelName = model.stringValue else { throw .invalidType("model", expected: "a string", got: model) }
        let lenient = passesThrough(modelName)
        if let stream = original["stream"], !stream.isNull, stream.boolValue == nil {
            throw .invalidType("stream", expected: "a boolean", got: stream)
        }
        let chat: JSONObject
        switch dialect {
        case .openAI: chat = original
        case .responses: chat = try ResponsesRequest.chatBody(from: original, lenient: lenient)
        case .anthropic: chat = try MessagesRequest.chatBody(from: original, lenient: lenient)
        }
        try self.init(endpoint: .chatCompletions, body: chat)
        self.dialect = dialect
        self.original = original
        self.passthroughHeaders = headers
    }

    public static func object(_ bytes: [UInt8]) throws(GatewayError) -> JSONObject {
        let value: JSONValue
        do {
            value = try JSONValue.parse(bytes)
        } catch {
            throw .invalidJSON(error)
        }
        guard case .object(let body) = value else {
            throw GatewayError(
                status: 400, message: "The request body must be a JSON object, not \(value.typeName).",
                type: "invalid_request_error")
        }
        try refuseDuplicateKeys(body)
        return body
    }

    /// A top-level field given twice is refused: the gateway reads the first copy, an upstream
    /// may read the last, and what is held, billed and sent must be the same request.
    static func refuseDuplicateKeys(_ body: JSONObject) throws(GatewayError) {
        // Request bodies have a handful of fields: comparing each with those before it allocates
        // nothing. A body with many (a hostile one) is checked with a set, so the work stays linear.
        let members = body.members
        if members.count <= 32 {
            for index in members.indices.dropFirst() {
                let key = members[index].key
                if members[..<index].contains(where: { $0.key == key }) {
                    throw .invalidValue(key, "The field '\(key)' is given more than once.")
                }
            }
            return
        }
        var seen = Set<String>(minimumCapacity: members.count)
        for member in members where !seen.insert(member.key).inserted {
            throw .invalidValue(member.key, "The field '\(member.key)' is given more than once.")
        }
    }

    /// The request as a relayed answer still needs it, once the upstream has it: everything but the
    /// content (the body, the caller's original request, the form), the body's `messages` kept when
    /// `keepingMessages` (a prompt counted by the engine when the answer ends). An agent's request is
    /// often 20–200 KB, and a stream can last minutes.
    public func relayed(keepingMessages: Bool) -> InferenceRequest {
        var request = self
        var kept = JSONObject()
        if keepingMessages, let messages = body["messages"] { kept["messages"] = messages }
        request.body = kept
        request.original = nil
        request.form = nil
        return request
    }

    /// `modelOverride` (the seed's `{AI_system}` path segment), when not empty, names the model and
    /// makes the body's `model` optional.
    public init(endpoint: Endpoint, bytes: [UInt8], modelOverride: String? = nil) throws(GatewayError) {
        var body = try Self.object(bytes)
        if let modelOverride, !modelOverride.isEmpty { body["model"] = .string(modelOverride) }
        try self.init(endpoint: endpoint, body: body)
    }

    public init(endpoint: Endpoint, body: JSONObject) throws(GatewayError) {
        self.endpoint = endpoint
        self.body = body
        guard let model = body["model"], !model.isNull else { throw .missingParameter("model") }
        guard let name = model.stringValue else { throw .invalidType("model", expected: "a string", got: model) }
        self.model = name

        try endpoint.validate(body)

        for name in ["max_tokens", "max_completion_tokens", "n"] {
            guard let value = body[name], !value.isNull else { continue }
            guard let number = value.intValue else { throw .invalidType(name, expected: "an integer", got: value) }
            guard number >= (name == "n" ? 1 : 0) else {
                throw .invalidValue(name, "Invalid '\(name)': integer below minimum value (\(number)).")
            }
        }

        var stream = false
        if let value = body["stream"], !value.isNull {
            guard let flag = value.boolValue else { throw .invalidType("stream", expected: "a boolean", got: value) }
            guard !flag || endpoint.canStream else { throw .unsupported("Streaming is not supported for \(endpoint.name).", param: "stream") }
            stream = flag
        }
        self.stream = stream
        var includeUsage = false
        if let options = body["stream_options"], !options.isNull {
            guard let object = options.objectValue else {
                throw .invalidType("stream_options", expected: "an object", got: options)
            }
            guard stream else {
                throw .invalidValue(
                    "stream_options", "The 'stream_options' parameter is only allowed when 'stream' is enabled.")
            }
            if let flag = object["include_usage"], !flag.isNull {
                guard let value = flag.boolValue else {
                    throw .invalidType("stream_options.include_usage", expected: "a boolean", got: flag)
                }
                includeUsage = value
            }
        }
        self.includeUsage = includeUsage
    }
}
