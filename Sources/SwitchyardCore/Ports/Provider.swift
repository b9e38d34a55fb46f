import Logging

/// One request as it goes to an upstream: the client's body with `model` already rewritten.
public struct UpstreamRequest: Sendable {
    /// What is sent, in the form the operation's body takes.
    public enum Payload: Sendable {
        case json(JSONObject)
        case multipart(MultipartForm)
        case bytes([UInt8], contentType: String)
    }

    public var endpoint: Endpoint
    public var payload: Payload
    /// Whether the upstream is asked to stream (`body["stream"]` says the same).
    public var stream: Bool
    /// The caller's headers that go upstream with a passed-through request (`anthropic-version`,
    /// `anthropic-beta`), lower-cased names; they replace the provider's own of the same name.
    public var headers: [(name: String, value: String)]

    public init(endpoint: Endpoint, payload: Payload, stream: Bool, headers: [(name: String, value: String)] = []) {
        self.endpoint = endpoint
        self.payload = payload
        self.stream = stream
        self.headers = headers
    }

    public init(endpoint: Endpoint, body: JSONObject, stream: Bool, headers: [(name: String, value: String)] = []) {
        self.init(endpoint: endpoint, payload: .json(body), stream: stream, headers: headers)
    }

    /// The JSON body's fields (empty for a multipart or byte body).
    public var body: JSONObject {
        if case .json(let object) = payload { return object }
        return JSONObject()
    }

    /// The body's bytes and content type, as they go on the wire; `boundary` frames a multipart body.
    /// `boundary` is asked for only by a multipart payload (a random one costs a `getrandom`).
    public func encoded(boundary: @autoclosure () -> String) -> (bytes: [UInt8], contentType: String) {
        switch payload {
        case .json(let object):
            return (object.serialized(), "application/json")
        case .multipart(let form):
            let boundary = boundary()
            return (form.encoded(boundary: boundary), "multipart/form-data; boundary=\(boundary)")
        case .bytes(let bytes, let contentType):
            return (bytes, contentType)
        }
    }
}

/// What an upstream answered. A non-2xx status always comes with a `.complete` body.
public struct UpstreamResponse: Sendable {
    public var status: Int
    /// Headers a caller may need passed on (`retry-after`), lower-cased names.
    public var headers: [(name: String, value: String)]
    public var body: Body

    public enum Body: Sendable {
        case complete([UInt8])
        case events(UpstreamEvents)
    }

    public init(status: Int, headers: [(name: String, value: String)] = [], body: Body) {
        self.status = status
        self.headers = headers
        self.body = body
    }
}

/// Why an upstream exchange failed, in terms the gateway maps to OpenAI errors.
public enum UpstreamError: Error, Sendable, Equatable {
    case connectFailed
    case timeout(Phase)
    /// The connection closed, or the stream ended, before the response was complete.
    case closedEarly
    /// The upstream answered something that is not a valid OpenAI-style response.
    case invalidResponse(String)
    /// Every connection to the upstream is busy and its wait queue is full (or the wait ran out).
    case overloaded

    public enum Phase: String, Sendable {
        case connect = "connect"
        case firstByte = "waiting for the first byte"
        case idle = "no data between chunks"
        case total = "total time"
    }
}

/// An upstream connection that can carry requests.
public protocol Provider: Sendable {
    var config: ProviderConfig { get }
    /// Makes the provider ready to serve before a request is sent: a managed engine is started and
    /// loaded here. Returns how long it took (zero when it was ready), which the ledger records as
    /// `load_ms` apart from queueing and generation, and never bills. Throws `UpstreamError` (or a
    /// `GatewayError`) when it cannot get ready; cancelling the calling task stops the wait.
    func prepare(logger: Logger) async throws -> Duration
    /// Whether `prepare` can have anything to do; when false the relay does not call it (a remote
    /// upstream is always ready, and a request should not pay for asking).
    var prepares: Bool { get }
    /// Counts `text` with the upstream's own tokenizer (`tokenizer:`); throws when it has none or the
    /// call fails (the caller then keeps its estimate).
    func countTokens(_ text: String, logger: Logger) async throws -> Int
    /// Whether the prepare step would return at once now. When it would not (an engine must load), a
    /// streaming client gets its 200 and `: loading` comments while it waits, instead of silence.
    var isReady: Bool { get }
    /// Sends one request. Throws `UpstreamError` when no HTTP answer came; a non-2xx answer is a
    /// response. Cancelling the calling task, or the returned events, cancels the upstream request.
    func send(_ request: UpstreamRequest, logger: Logger) async throws -> UpstreamResponse
    /// One call of the midjourney-proxy task API (`POST /mj/submit/imagine`, `GET /mj/task/ID/fetch`),
    /// `path` below the provider's base URL; the answer's status and body.
    func task(method: String, path: String, body: [UInt8]?, logger: Logger) async throws -> (status: Int, body: [UInt8])
}

extension Provider {
    /// A remote upstream is always ready.
    public func prepare(logger: Logger) async throws -> Duration { .zero }
    public var prepares: Bool { false }
    public var isReady: Bool { true }

    public func countTokens(_ text: String, logger: Logger) async throws -> Int {
        throw UpstreamError.invalidResponse("no tokenizer configured")
    }

    public func task(method: String, path: String, body: [UInt8]?, logger: Logger) async throws -> (status: Int, body: [UInt8]) {
        throw UpstreamError.invalidResponse("this provider serves no tasks")
    }
}
