import AsyncHTTPClient
import Logging
import NIOCore
import NIOHTTP1
import Synchronization
import SwitchyardCore

/// One request to an upstream through AsyncHTTPClient's delegate interface: the response's parts are
/// handled where the client reads them, on the connection's event loop, and the caller is resumed
/// once — at the head for a stream, at the end for a whole body.
///
/// The async interface (`HTTPClient.execute(_:deadline:logger:)`) costs more per request: it starts a
/// `Task` to register the request with an actor, which runs on Swift's pool and, with the gateway on
/// one core, wakes a thread and preempts the loop's (two context switches a request); its body is an
/// async sequence, which a stream's pump then read in a task of its own and re-queued for the relay
/// (two hand-offs per event). Here the SSE parser runs in `didReceiveBodyPart`, and each payload goes
/// straight into the `UpstreamEvents` the relay reads.
///
/// The timeouts are the upstream's `Watchdogs`: no deadline is given to the client, whose deadline
/// is an event-loop timer per request. The first-byte deadline covers the wait for the head, as the
/// client's did; every piece of the body extends it by the idle timeout.
final class UpstreamCall: HTTPClientResponseDelegate, @unchecked Sendable {
    typealias Response = Void

    /// What the body is, decided from the head.
    enum Shape: Sendable {
        /// Read whole, at most `limit` bytes.
        case whole(limit: Int)
        /// Server-sent events: their `data` payloads. The stream is complete at `[DONE]`, at a payload
        /// `isLastEvent` accepts (passed on), or — when `endsAtEOF` — at the body's end.
        case events(isLastEvent: (@Sendable ([UInt8]) -> Bool)?, endsAtEOF: Bool)
        /// Raw pieces as they arrive (audio), ending with the body.
        case pieces
    }

    /// The response, as far as the caller needs it to go on.
    enum Opened: Sendable {
        case whole(status: Int, headers: HTTPHeaders, bytes: [UInt8])
        case streaming(status: Int, headers: HTTPHeaders, events: UpstreamEvents)
    }

    private let decide: @Sendable (HTTPResponseHead) -> Shape
    private let activity: ActivityDeadline
    private let idle: Duration
    /// The phase of a failure before the head (`.firstByte`, or `.total` when that deadline is the
    /// earlier); after the head it is `.idle`.
    private let headPhase: UpstreamError.Phase
    private let onEnd: @Sendable () -> Void

    // Touched only on the task's event loop, where every delegate method and the task's future run.
    private var shape: Shape?
    private var status = 0
    private var headers = HTTPHeaders()
    private var bytes: [UInt8] = []
    private var parser = SSEParser()
    private var done = false
    private var events: UpstreamEvents?

    private enum Opening {
        case waiting(CheckedContinuation<Opened, any Error>?)
        case ready(Result<Opened, any Error>)
        case taken
    }

    private struct Shared {
        var opening = Opening.waiting(nil)
        /// The phase a watchdog found expired, for the failure that its cancelling causes.
        var timedOut: UpstreamError.Phase?
        var alarm: Watchdogs.Alarm?
        var ended = false
    }

    private let shared = Mutex(Shared())

    private init(
        activity: ActivityDeadline, idle: Duration, headPhase: UpstreamError.Phase,
        decide: @escaping @Sendable (HTTPResponseHead) -> Shape, onEnd: @escaping @Sendable () -> Void
    ) {
        self.activity = activity
        self.idle = idle
        self.headPhase = headPhase
        self.decide = decide
        self.onEnd = onEnd
    }

    /// Sends `request` and returns once the response is open: its head for a stream, its whole body
    /// otherwise. `onEnd` runs once the exchange is over (the connection back in the pool or closed),
    /// on every path. Cancelling the calling task cancels the request while it is being opened; a
    /// stream's consumer cancels it through its `UpstreamEvents`.
    static func open(
        _ request: HTTPClient.Request, client: HTTPClient, timers: Watchdogs, firstByte: ContinuousClock.Instant,
        total: ContinuousClock.Instant?, idle: Duration, logger: Logger,
        decide: @escaping @Sendable (HTTPResponseHead) -> Shape, onEnd: @escaping @Sendable () -> Void
    ) async throws -> Opened {
        let activity = ActivityDeadline(deadline: firstByte, phase: .firstByte, total: total)
        let call = UpstreamCall(
            activity: activity, idle: idle, headPhase: firstByte == total ? .total : .firstByte, decide: decide,
            onEnd: onEnd)
        // The client logs only at debug and trace. Given no logger it uses a disabled one, and then
        // it does not copy the logger's metadata to add the request's number, as it does otherwise.
        let task = client.execute(
            request: request, delegate: call, eventLoop: .indifferent, deadline: nil,
            logger: logger.logLevel <= .debug ? logger : nil)
        task.futureResult.whenComplete { result in call.ended(result, task: task) }
        call.watch(timers.arm(activity) { phase in call.timedOut(phase, task: task) })
        return try await withTaskCancellationHandler {
            try await call.opened()
        } onCancel: {
            task.cancel()
        }
    }

    // MARK: the caller's side

    private func opened() async throws -> Opened {
        try await withCheckedThrowingContinuation { continuation in
            let ready = shared.withLock { shared -> Result<Opened, any Error>? in
                if case .ready(let result) = shared.opening {
                    shared.opening = .taken
                    return result
                }
                shared.opening = .waiting(continuation)
                return nil
            }
            if let ready { continuation.resume(with: ready) }
        }
    }

    private func open(_ result: Result<Opened, any Error>) {
        let waiter = shared.withLock { shared -> CheckedContinuation<Opened, any Error>? in
            switch shared.opening {
            case .waiting(let waiter?):
                shared.opening = .taken
                return waiter
            case .waiting(nil):
                shared.opening = .ready(result)
                return nil
            case .ready, .taken:
                return nil
            }
        }
        waiter?.resume(with: result)
    }

    private func watch(_ alarm: Watchdogs.Alarm) {
        let over = shared.withLock { shared -> Bool in
            if !shared.ended { shared.alarm = alarm }
            return shared.ended
        }
        if over { alarm.disarm() }
    }

    /// A watchdog's timer (on its own loop): the request is cancelled, which closes the connection,
    /// and fails with the timeout (`ended`).
    private func timedOut(_ phase: UpstreamError.Phase, task: HTTPClient.Task<Void>) {
        shared.withLock { $0.timedOut = phase }
        task.cancel()
    }

    // MARK: the client's side (the task's event loop)

    func didReceiveHead(task: HTTPClient.Task<Void>, _ head: HTTPResponseHead) -> EventLoopFuture<Void> {
        let shape = decide(head)
        self.shape = shape
        status = Int(head.status.code)
        headers = head.headers
        switch shape {
        case .whole(let limit):
            if let length = head.headers.first(name: "content-length").flatMap(Int.init), length > 0 {
                bytes.reserveCapacity(min(length, limit))
            }
        case .events, .pieces:
            let events = UpstreamEvents()
            self.events = events
            events.onCancel { task.cancel() }
            open(.success(.streaming(status: status, headers: headers, events: events)))
        }
        return task.eventLoop.makeSucceededVoidFuture()
    }

    func didReceiveBodyPart(task: HTTPClient.Task<Void>, _ buffer: ByteBuffer) -> EventLoopFuture<Void> {
        activity.extend(to: .now + idle, phase: .idle)
        switch shape {
        case .whole(let limit)?:
            if bytes.count + buffer.readableBytes > limit {
                task.fail(reason: UpstreamError.invalidResponse("response larger than \(limit) bytes"))
            } else {
                bytes.append(contentsOf: buffer.readableBytesView)
            }
        case .events(let isLastEvent, _)?:
            guard !done, let events else { break }
            parser.feed(buffer.readableBytesView) { emit($0, into: events, isLastEvent: isLastEvent) }
        case .pieces?:
            if buffer.readableBytes > 0 { events?.yield(Array(buffer.readableBytesView)) }
        case nil:
            break
        }
        return task.eventLoop.makeSucceededVoidFuture()
    }

    /// One event's payload: passed on, unless the stream is already complete; `[DONE]` completes it,
    /// and so does a payload `isLastEvent` accepts, after being passed on.
    private func emit(_ payload: [UInt8], into events: UpstreamEvents, isLastEvent: (@Sendable ([UInt8]) -> Bool)?) {
        guard !done else { return }
        if SSEParser.isDone(payload) {
            done = true
            events.finish()
        } else if let isLastEvent, isLastEvent(payload) {
            events.yield(payload)
            done = true
            events.finish()
        } else {
            events.yield(payload)
        }
    }

    func didReceiveError(task: HTTPClient.Task<Void>, _ error: any Error) {}

    func didFinishRequest(task: HTTPClient.Task<Void>) throws {}

    /// The request is over: its future completed, once, on the task's loop.
    private func ended(_ result: Result<Void, any Error>, task: HTTPClient.Task<Void>) {
        let (alarm, timedOut) = shared.withLock { shared -> (Watchdogs.Alarm?, UpstreamError.Phase?) in
            shared.ended = true
            defer { shared.alarm = nil }
            return (shared.alarm, shared.timedOut)
        }
        alarm?.disarm()
        // Before the caller hears of it: once `send` has returned or thrown, the slot is free.
        onEnd()
        switch result {
        case .success:
            switch shape {
            case .events(let isLastEvent, let endsAtEOF)?:
                guard let events, !done else { return }
                parser.finish { emit($0, into: events, isLastEvent: isLastEvent) }
                if done || endsAtEOF {
                    events.finish()
                } else {
                    events.finish(throwing: UpstreamError.closedEarly)
                }
            case .pieces?:
                events?.finish()
            case .whole?, nil:
                open(.success(.whole(status: status, headers: headers, bytes: bytes)))
                bytes = []
            }
        case .failure(let error):
            let failure: any Error =
                timedOut.map { UpstreamError.timeout($0) }
                ?? OpenAIProvider.map(error, phase: shape == nil ? headPhase : .idle)
            if let events {
                if done { events.finish() } else { events.finish(throwing: failure) }
            }
            open(.failure(failure))
        }
    }
}
