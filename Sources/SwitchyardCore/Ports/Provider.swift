import Logging

/// One request as it goes to an upstream: the client's body with `model` already rewritten.
public struct UpstreamRequest: Sendable {
    public var endpoint: Endpoint
    public var body: JSONObject
    /// Whether the upstream is asked to stream (`body["stream"]` says the same).
    public var stream: Bool

    public init(endpoint: Endpoint, body: JSONObject, stream: Bool) {
        self.endpoint = endpoint
        self.body = body
        self.stream = stream
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
    /// Sends one request. Throws `UpstreamError` when no HTTP answer came; a non-2xx answer is a
    /// response. Cancelling the calling task, or the returned events, cancels the upstream request.
    func send(_ request: UpstreamRequest, logger: Logger) async throws -> UpstreamResponse
}
