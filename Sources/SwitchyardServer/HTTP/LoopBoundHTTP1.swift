import Hummingbird
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

    /// The most a connection reads at once. A connection keeps its read buffers between reads, and
    /// NIO's defaults let each grow to 64 KB and keep up to four; one large request (an agent's
    /// context, an upload) then left them with every connection that once carried one, for as long
    /// as it stayed open: an open stream or an idle keep-alive connection. 16 KB reads a large body
    /// in a few more `read`s and bounds what each connection keeps (BENCHMARKS.md, session 10).
    static let largestRead = 16 * 1024
    /// Reads per wake-up of the loop, and so (NIO pools one buffer per read) the read buffers a
    /// connection keeps: NIO's default is 4. With 1, a connection keeps one or two; a large body
    /// takes a wake-up per 16 KB, a request that fits in one read is read as before.
    static let readsPerWakeup: UInt = 1

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        let reads = AdaptiveRecvByteBufferAllocator(minimum: 64, initial: 2048, maximum: Self.largestRead)
        do {
            try channel.syncOptions?.setOption(ChannelOptions.recvAllocator, value: reads)
            try channel.syncOptions?.setOption(ChannelOptions.maxMessagesPerRead, value: Self.readsPerWakeup)
        } catch {
            return channel.eventLoop.makeFailedFuture(error)
        }
        return inner.setup(channel: channel, logger: logger)
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

/// Each request's middleware and handler in a task of its own, on the connection's loop, for
/// memory. A task's allocator keeps the slabs its async frames grew to until the task ends; run in
/// the connection's task, which lives as long as the connection, a request's frames (the
/// middleware, the router, the relay's handler alone 14 KB) kept about 19 KB more per connection —
/// per open stream and per idle keep-alive connection (heaptrack; BENCHMARKS.md). The response's
/// body is still written from the connection's task, whose slabs are then only the body's.
struct TaskPerRequest<Inner: HTTPResponder>: HTTPResponder where Inner.Context: Sendable {
    let inner: Inner

    func respond(to request: Request, context: Inner.Context) async throws -> Response {
        let inner = self.inner
        let work = Task(executorPreference: LoopExecutor.current) {
            try await inner.respond(to: request, context: context)
        }
        return try await withTaskCancellationHandler {
            try await work.value
        } onCancel: {
            work.cancel()
        }
    }
}
