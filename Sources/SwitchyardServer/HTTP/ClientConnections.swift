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
    private let watchers = Mutex<[ObjectIdentifier: ClientConnection]>([:])

    public init() {}

    /// The pipeline handler for one new connection.
    func makeHandler() -> any RemovableChannelHandler {
        ConnectionWatchHandler(registry: self)
    }

    func register(_ connection: ClientConnection, for channel: any Channel) {
        watchers.withLock { $0[ObjectIdentifier(channel)] = connection }
    }

    func unregister(_ channel: any Channel) {
        _ = watchers.withLock { $0.removeValue(forKey: ObjectIdentifier(channel)) }
    }

    func connection(for channel: any Channel) -> ClientConnection? {
        watchers.withLock { $0[ObjectIdentifier(channel)] }
    }

    var count: Int { watchers.withLock { $0.count } }
}

/// One client connection's "gone" signal.
public final class ClientConnection: Sendable {
    private struct State {
        var gone = false
        var nextToken = 0
        var callbacks: [Int: @Sendable () -> Void] = [:]
    }

    private let state = Mutex(State())

    public init() {}

    public var isGone: Bool { state.withLock { $0.gone } }

    /// Runs `callback` once when the client goes away (at once if it already has). Cancel the
    /// returned registration when the request ends, so that a long keep-alive connection does not
    /// accumulate callbacks.
    public func onGone(_ callback: @escaping @Sendable () -> Void) -> Registration {
        let token = state.withLock { state -> Int? in
            if state.gone { return nil }
            state.nextToken += 1
            state.callbacks[state.nextToken] = callback
            return state.nextToken
        }
        guard let token else {
            callback()
            return Registration(connection: nil, token: 0)
        }
        return Registration(connection: self, token: token)
    }

    func markGone() {
        let callbacks = state.withLock { state -> [@Sendable () -> Void] in
            guard !state.gone else { return [] }
            state.gone = true
            defer { state.callbacks.removeAll() }
            return Array(state.callbacks.values)
        }
        for callback in callbacks { callback() }
    }

    fileprivate func remove(_ token: Int) {
        _ = state.withLock { $0.callbacks.removeValue(forKey: token) }
    }

    public struct Registration: Sendable {
        fileprivate let connection: ClientConnection?
        fileprivate let token: Int

        public func cancel() {
            connection?.remove(token)
        }
    }
}

final class ConnectionWatchHandler: ChannelInboundHandler, RemovableChannelHandler, Sendable {
    typealias InboundIn = NIOAny

    private let registry: ClientConnections
    private let connection = ClientConnection()

    init(registry: ClientConnections) {
        self.registry = registry
    }

    func handlerAdded(context: ChannelHandlerContext) {
        registry.register(connection, for: context.channel)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        registry.unregister(context.channel)
        connection.markGone()
    }

    func channelInactive(context: ChannelHandlerContext) {
        connection.markGone()
        context.fireChannelInactive()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed = event { connection.markGone() }
        context.fireUserInboundEventTriggered(event)
    }
}
