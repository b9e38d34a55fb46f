import Hummingbird
import NIOCore

/// Per-request context: Hummingbird's core storage plus the channel the request came on, through
/// which the relay learns when the client goes away, and the request's record for its log line
/// (set by `RequestTrackingMiddleware`).
public struct GatewayRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    public let channel: any Channel
    var record: RequestRecord?

    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.channel = source.channel
    }
}
