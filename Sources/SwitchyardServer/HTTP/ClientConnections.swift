import Hummingbird
import NIOCore
import Synchronization

/// Tells a request when its client has gone away, so that its upstream request is cancelled at
/// once rather than when the next chunk fails to write.
///
/// Hummingbird allows half-closed connections, so a client closing its socket shows up as an
/// `inputClosed` event, not a closed channel; nothing in the router sees it. A handler in every
/// connection's pipeline watches for it and for the channel going inactive. Requests find their
/// connection's watcher through this registry, keyed by channel identity.
public final class ClientConnections: Sendable {
    /// Per connection, the signal fired when its client goes away.
    private let watchers = Mutex<[ObjectIdentifier: Signal]>([:])

    public init() {}

    /// The pipeline handler for one new connection.
    func makeHandler() -> any RemovableChannelHandler {
        ConnectionWatchHandler(registry: self)
    }

    func register(_ connection: Signal, for channel: any Channel) {
        watchers.withLock { $0[ObjectIdentifier(channel)] = connection }
    }

    func unregister(_ channel: any Channel) {
        _ = watchers.withLock { $0.removeValue(forKey: ObjectIdentifier(channel)) }
    }

    func connection(for channel: any Channel) -> Signal? {
        watchers.withLock { $0[ObjectIdentifier(channel)] }
    }

    var count: Int { watchers.withLock { $0.count } }
}

final class ConnectionWatchHandler: ChannelInboundHandler, RemovableChannelHandler, Sendable {
    typealias InboundIn = NIOAny

    private let registry: ClientConnections
    private let connection = Signal()

    init(registry: ClientConnections) {
        self.registry = registry
    }

    func handlerAdded(context: ChannelHandlerContext) {
        registry.register(connection, for: context.channel)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        registry.unregister(context.channel)
        connection.fire()
    }

    func channelInactive(context: ChannelHandlerContext) {
        connection.fire()
        context.fireChannelInactive()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed = event { connection.fire() }
        context.fireUserInboundEventTriggered(event)
    }
}
