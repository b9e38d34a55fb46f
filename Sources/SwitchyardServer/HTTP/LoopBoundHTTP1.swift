import HummingbirdCore
import Logging
import NIOCore
import SwitchyardUpstream

/// HTTP/1.1 as Hummingbird serves it, with each connection's work run on the connection's own
/// event loop (`LoopExecutor`) instead of Swift's pool.
///
/// A request then goes from the socket to the handler, upstream and back without waking another
/// thread, except for the database's writer: the request is read, relayed and answered on one
/// thread, and so is every chunk of a stream.
struct LoopBoundHTTP1: ServerChildChannel {
    typealias Value = HTTP1Channel.Value
    let inner: HTTP1Channel

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        inner.setup(channel: channel, logger: logger)
    }

    func handle(value: Value, logger: Logger) async {
        await withTaskExecutorPreference(LoopExecutor.of(value.channel.eventLoop)) {
            await inner.handle(value: value, logger: logger)
        }
    }
}

extension HTTPServerBuilder {
    /// `http1(configuration:)`, each connection on its event loop.
    static func loopBoundHTTP1(configuration: HTTP1Channel.Configuration) -> HTTPServerBuilder {
        .init { responder in LoopBoundHTTP1(inner: HTTP1Channel(responder: responder, configuration: configuration)) }
    }
}
