import NIOCore

/// Notes when each TCP connection opens and closes, so tests can prove that the gateway
/// lets go of upstream connections promptly (for example when its own client disconnects).
final class ConnectionTracker: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = NIOAny

    private let state: FakeUpstreamState
    private var opened = false
    private var closed = false

    init(state: FakeUpstreamState) {
        self.state = state
    }

    // The handler may be added to a channel that is already active, in which case
    // `channelActive` never reaches it.
    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { markOpened() }
    }

    func channelActive(context: ChannelHandlerContext) {
        markOpened()
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        markClosed()
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        markClosed()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed {
            // Hummingbird allows half-closure, so a peer that goes away shows up as end of
            // input and the socket would linger until the next failed write. No HTTP client
            // half-closes on purpose, so treat it as the close it almost certainly is; closing
            // here also wakes handlers that are stalling on purpose.
            markClosed()
            context.fireUserInboundEventTriggered(event)
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    private func markOpened() {
        guard !opened else { return }
        opened = true
        state.connectionOpened()
    }

    private func markClosed() {
        guard opened, !closed else { return }
        closed = true
        state.connectionClosed(at: .now)
    }
}
