import HTTPTypes
import Hummingbird
import Logging
import Synchronization
import SwitchyardCore

/// The outermost middleware. It gives every request its id (the caller's valid `x-request-id` or a
/// new one, sent back in the same header), refuses new requests with 503 once the gateway drains,
/// counts the requests in flight and the streams open, and when a request has ended — for a stream,
/// when its last byte was written — writes its log line and its request metrics.
struct RequestTrackingMiddleware: RouterMiddleware {
    typealias Context = GatewayRequestContext

    static let requestIDHeader = HTTPField.Name("x-request-id")!
    /// Health checks and scrapes: never refused or counted, logged at debug only.
    static let probes: Set<String> = ["/health", "/ready", "/metrics"]

    let lifecycle: GatewayLifecycle
    let metrics: GatewayMetrics
    /// Writes the request lines: the application's logger, without the request's own metadata (the
    /// line carries the request id itself), so that no per-request logger has to be changed for it.
    let logger: Logger

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws
        -> Response
    {
        let startedAt = ContinuousClock.now
        let id = RequestID.accept(request.headers[Self.requestIDHeader]) ?? RequestID.make()
        var context = context
        // Hummingbird's own per-request key, so that its lines and ours name the request alike.
        context.logger[metadataKey: "hb.request.id"] = .string(id)
        let record = RequestRecord(id: id, startedAt: startedAt)
        context.record = record

        if Self.probes.contains(request.uri.path) {
            var response = await respond(request, context: context, record: record, next: next)
            response.headers[Self.requestIDHeader] = id
            finished(request, response.status, record: record, level: .debug)
            return response
        }
        guard lifecycle.enter() else {
            record.failed(GatewayError.shuttingDown)
            var response = (try? GatewayError.shuttingDown.response(from: request, context: context))
                ?? Response(status: .serviceUnavailable)
            response.headers[Self.requestIDHeader] = id
            response.headers[.connection] = "close"
            finished(request, response.status, record: record)
            return response
        }
        metrics.inFlight.increment()
        var response = await respond(request, context: context, record: record, next: next)
        response.headers[Self.requestIDHeader] = id
        let status = response.status
        // A whole body is written right after this returns; a stream is done when its last byte is.
        let streamed = response.body.contentLength == nil
        if streamed { metrics.openStreams.increment() }
        // The line and the counters first, the gauges and the drain's count last: whoever sees the
        // request gone sees it counted.
        let finish = Finish { [lifecycle, metrics] in
            finished(request, status, record: record)
            if streamed { metrics.openStreams.decrement() }
            metrics.inFlight.decrement()
            lifecycle.leave()
        }
        guard streamed else {
            finish()
            return response
        }
        let body = response.body
        response.body = ResponseBody { writer in
            do {
                try await body.write(writer)
                finish()
            } catch {
                finish()
                throw error
            }
        }
        return response
    }

    /// The handler's response, or its error as the OpenAI error response (remembered for the log).
    private func respond(
        _ request: Request, context: Context, record: RequestRecord, next: (Request, Context) async throws -> Response
    ) async -> Response {
        let failure: GatewayError
        do {
            return try await next(request, context)
        } catch let error as GatewayError {
            failure = error
        } catch {
            // OpenAIErrorMiddleware turns everything into a GatewayError; this is the backstop.
            context.logger.error("unhandled error", metadata: ["error.type": "\(type(of: error))"])
            failure = .internalError
        }
        record.failed(failure)
        return (try? failure.response(from: request, context: context)) ?? Response(status: .internalServerError)
    }

    private func finished(
        _ request: Request, _ status: HTTPResponse.Status, record: RequestRecord, level: Logger.Level = .info
    ) {
        let line = RequestLogLine(request: request, status: status, record: record)
        if line.snapshot.admission != nil || Self.isInference(request) {
            metrics.requestFinished(
                model: line.snapshot.admission?.model, status: Int(status.code), endReason: line.endReason)
        }
        logger.log(level: level, "request", metadata: line.metadata)
    }

    /// The inference endpoints, in both URL styles (refusals before admission count too).
    static func isInference(_ request: Request) -> Bool {
        guard request.method == .post else { return false }
        let path = request.uri.path
        // `/chat/completions` ends in `/completions` too.
        return path.hasSuffix("/completions") || path.hasSuffix("/embeddings") || path.hasSuffix("/responses")
            || path.hasSuffix("/messages")
    }
}

/// Runs its action once: when the response has been written, or — should Hummingbird drop the
/// response without writing its body (the connection was already gone) — when it is released.
private final class Finish: Sendable {
    private let done = Atomic<Bool>(false)
    private let action: @Sendable () -> Void

    init(_ action: @escaping @Sendable () -> Void) {
        self.action = action
    }

    func callAsFunction() {
        guard !done.exchange(true, ordering: .acquiringAndReleasing) else { return }
        action()
    }

    deinit {
        callAsFunction()
    }
}
