import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization
import SwitchyardCore

/// An OpenAI-compatible upstream over HTTP: OpenAI itself, vLLM, llama.cpp, Ollama, other gateways.
public struct OpenAIProvider: Provider {
    public let config: ProviderConfig
    let client: HTTPClient
    /// The exchanges' watchdogs, checked by one timer (`Watchdogs`).
    let timers: Watchdogs
    /// Requests in flight to this upstream, bounded by `max_connections`, and those waiting, by `max_queue`.
    let gate: ConnectionGate
    private let baseURL: String
    let fixedHeaders: HTTPHeaders
    /// An event payload after which the stream is complete, for APIs that send no `[DONE]`
    /// (Anthropic's `message_stop`, Responses' final event); it is passed on, then the stream ends.
    let isLastEvent: (@Sendable ([UInt8]) -> Bool)?

    /// Largest whole (non-streamed) upstream body the gateway accepts.
    static let maxResponseBytes = 64 * 1024 * 1024

    init(config: ProviderConfig, client: HTTPClient) {
        var headers = HTTPHeaders()
        if let key = config.apiKey { headers.add(name: "authorization", value: "Bearer \(key)") }
        self.init(config: config, client: client, authentication: headers, isLastEvent: nil)
    }

    /// `authentication`: the headers that carry the key; `isLastEvent`: see the property.
    init(
        config: ProviderConfig, client: HTTPClient, authentication: HTTPHeaders,
        isLastEvent: (@Sendable ([UInt8]) -> Bool)?
    ) {
        self.config = config
        self.client = client
        self.timers = Watchdogs(eventLoop: client.eventLoopGroup.next())
        self.gate = ConnectionGate(capacity: config.maxConnections, maxWaiters: config.maxQueue)
        self.baseURL = config.baseURL.hasSuffix("/") ? String(config.baseURL.dropLast()) : config.baseURL
        var headers = authentication
        for (name, value) in config.headers.sorted(by: { $0.key < $1.key }) { headers.add(name: name, value: value) }
        self.fixedHeaders = headers
        self.isLastEvent = isLastEvent
    }

    /// The final event of a Responses stream (which ends without `[DONE]`): `response.completed`,
    /// `.incomplete` or `.failed`. Only asked of Responses streams, passed through.
    @Sendable static func isLastResponsesEvent(_ payload: [UInt8]) -> Bool {
        guard case .object(let event)? = try? JSONValue.parse(payload), let type = event["type"]?.stringValue else {
            return false
        }
        return type == "response.completed" || type == "response.incomplete" || type == "response.failed"
    }

    public func send(_ request: UpstreamRequest, logger: Logger) async throws -> UpstreamResponse {
        try await send(request, logger: logger, baseURL: baseURL)
    }

    /// Sends to `baseURL` instead of the configured one (a managed engine's port changes at each start).
    func send(_ request: UpstreamRequest, logger: Logger, baseURL: String) async throws -> UpstreamResponse {
        var outgoing = HTTPClientRequest(url: baseURL + request.endpoint.path)
        outgoing.method = .POST
        outgoing.headers = fixedHeaders
        for (name, value) in request.headers { outgoing.headers.replaceOrAdd(name: name, value: value) }
        outgoing.headers.add(name: "accept", value: request.stream ? "text/event-stream" : "application/json")
        let (body, contentType) = request.encoded(boundary: "switchyard-" + ResponseIdentity.randomID())
        outgoing.headers.add(name: "content-type", value: contentType)
        outgoing.body = .bytes(body)

        let started = ContinuousClock.now
        let total = config.timeouts.total.map { started + $0 }
        let firstByteDeadline = min(started + config.timeouts.firstByte, total ?? .now + .seconds(86_400 * 365))
        // Waiting for a connection counts towards the first byte, as it does inside the HTTP client.
        let lease = try await acquireSlot(until: firstByteDeadline)
        let response: HTTPClientResponse
        do {
            response = try await client.execute(
                outgoing, deadline: .now() + .init(firstByteDeadline - .now), logger: logger.heldAtDebug)
        } catch {
            lease.release()
            throw Self.map(error, phase: firstByteDeadline == total ? .total : .firstByte)
        }
        let status = Int(response.status.code)
        var headers: [(name: String, value: String)] = []
        if let retryAfter = response.headers.first(name: "retry-after") { headers.append(("retry-after", retryAfter)) }
        if let contentType = response.headers.first(name: "content-type") { headers.append(("content-type", contentType)) }

        let isEventStream = response.headers.first(name: "content-type")?.lowercased().hasPrefix("text/event-stream") ?? false
        let idle = config.timeouts.idle
        if (200..<300).contains(status) && isEventStream {
            let events = Self.events(
                of: response.body, firstByteDeadline: firstByteDeadline, idle: idle, total: total, timers: timers,
                isLastEvent: request.endpoint == .responses ? Self.isLastResponsesEvent : isLastEvent,
                // Media streams (partial images, transcripts, speech events) end with the body, not `[DONE]`.
                endsAtEOF: request.endpoint.output == .media, onEnd: { lease.release() })
            return UpstreamResponse(status: status, headers: headers, body: .events(events))
        }
        if (200..<300).contains(status) && request.endpoint == .speech {
            // Audio is relayed as it arrives: each piece of the body is one "event" of raw bytes.
            let pieces = Self.pieces(
                of: response.body, firstByteDeadline: firstByteDeadline, idle: idle, total: total, timers: timers
            ) {
                lease.release()
            }
            return UpstreamResponse(status: status, headers: headers, body: .events(pieces))
        }
        defer { lease.release() }
        let bytes = try await Self.collect(
            response.body, firstByteDeadline: firstByteDeadline, idle: idle, total: total, timers: timers)
        return UpstreamResponse(status: status, headers: headers, body: .complete(bytes))
    }

    /// A midjourney-proxy call: `path` below the base URL (the proxy's root, e.g. `http://mj:8080`),
    /// the key also as `mj-api-secret`, as those proxies read it.
    public func task(method: String, path: String, body: [UInt8]?, logger: Logger) async throws -> (status: Int, body: [UInt8]) {
        var outgoing = HTTPClientRequest(url: baseURL + path)
        outgoing.method = method == "GET" ? .GET : .POST
        outgoing.headers = fixedHeaders
        if let key = config.apiKey { outgoing.headers.replaceOrAdd(name: "mj-api-secret", value: key) }
        outgoing.headers.add(name: "accept", value: "application/json")
        if let body {
            outgoing.headers.add(name: "content-type", value: "application/json")
            outgoing.body = .bytes(body)
        }
        let deadline = ContinuousClock.now + config.timeouts.firstByte
        let lease = try await acquireSlot(until: deadline)
        defer { lease.release() }
        do {
            let response = try await client.execute(outgoing, deadline: .now() + .init(deadline - .now), logger: logger.heldAtDebug)
            let bytes = try await Self.collect(
                response.body, firstByteDeadline: deadline, idle: config.timeouts.idle, total: nil, timers: timers)
            return (Int(response.status.code), bytes)
        } catch {
            throw Self.map(error, phase: .firstByte)
        }
    }

    /// A slot of the gate, waiting at most until `deadline`; a full queue or a wait that runs out is
    /// `UpstreamError.overloaded`.
    private func acquireSlot(until deadline: ContinuousClock.Instant) async throws -> GateLease {
        let gate = self.gate
        if gate.tryAcquire() { return GateLease(gate) }
        let acquired = try await withThrowingTaskGroup(of: Bool.self) { group in
            group.addTask {
                try await gate.acquire()
                return true
            }
            group.addTask {
                try await ActivityDeadline.sleep(until: deadline)
                return false
            }
            let first = try await group.next() ?? false
            group.cancelAll()
            if !first {
                // The wait ran out, but the slot may have been granted just before the waiter was cancelled.
                while let late = try? await group.next() {
                    if late { gate.release() }
                }
            }
            return first
        }
        guard acquired else { throw UpstreamError.overloaded }
        return GateLease(gate)
    }

    /// Reads a whole body, failing if the upstream goes quiet for longer than `idle`. The reading is a
    /// task of its own that the watchdog's timer cancels (`ActivityDeadline.arm`): one task per
    /// exchange, not a group of two.
    static func collect(
        _ body: HTTPClientResponse.Body, firstByteDeadline: ContinuousClock.Instant, idle: Duration,
        total: ContinuousClock.Instant?, timers: Watchdogs
    ) async throws -> [UInt8] {
        let activity = ActivityDeadline(deadline: firstByteDeadline, phase: .firstByte, total: total)
        let timedOut = TimedOut()
        let reader = Task(executorPreference: LoopExecutor.current) {
            var bytes: [UInt8] = []
            do {
                for try await buffer in body {
                    activity.extend(to: .now + idle, phase: .idle)
                    guard bytes.count + buffer.readableBytes <= maxResponseBytes else {
                        throw UpstreamError.invalidResponse("response larger than \(maxResponseBytes) bytes")
                    }
                    bytes.append(contentsOf: buffer.readableBytesView)
                }
            } catch {
                throw map(error, phase: .idle)
            }
            return bytes
        }
        let alarm = timers.arm(activity) { phase in
            timedOut.phase.withLock { $0 = phase }
            reader.cancel()
        }
        defer { alarm.disarm() }
        do {
            return try await withTaskCancellationHandler {
                try await reader.value
            } onCancel: {
                reader.cancel()
            }
        } catch {
            if let phase = timedOut.phase.withLock({ $0 }) { throw UpstreamError.timeout(phase) }
            throw error
        }
    }

    /// Parses the SSE body in a task of its own. After `[DONE]` the consumer is released at once while
    /// the rest of the body is drained, so that the connection goes back to the pool.
    static func events(
        of body: HTTPClientResponse.Body, firstByteDeadline: ContinuousClock.Instant, idle: Duration,
        total: ContinuousClock.Instant?, timers: Watchdogs, isLastEvent: (@Sendable ([UInt8]) -> Bool)? = nil,
        endsAtEOF: Bool = false, onEnd: @escaping @Sendable () -> Void
    ) -> UpstreamEvents {
        EventPump.start(onEnd: onEnd) { events, pump in
            let activity = ActivityDeadline(deadline: firstByteDeadline, phase: .firstByte, total: total)
            // The watchdog is a timer: at the deadline it ends the events with the timeout and stops
            // the reading (the pump's task), which closes the upstream connection.
            let alarm = timers.arm(activity) { phase in
                events.finish(throwing: UpstreamError.timeout(phase))
                pump.cancel()
            }
            defer { alarm.disarm() }
            var parser = SSEParser()
            var done = false
            let emit: ([UInt8]) -> Void = { payload in
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
            do {
                for try await buffer in body {
                    activity.extend(to: .now + idle, phase: .idle)
                    parser.feed(buffer.readableBytesView, emit: emit)
                }
                parser.finish(emit: emit)
            } catch {
                if done { return }
                throw map(error, phase: .idle)
            }
            if !done && !endsAtEOF { throw UpstreamError.closedEarly }
        }
    }

    /// A body relayed as it arrives (audio): its pieces in order, ending with the body; a stall past
    /// `idle` or a broken connection ends it with an error.
    static func pieces(
        of body: HTTPClientResponse.Body, firstByteDeadline: ContinuousClock.Instant, idle: Duration,
        total: ContinuousClock.Instant?, timers: Watchdogs, onEnd: @escaping @Sendable () -> Void
    ) -> UpstreamEvents {
        EventPump.start(onEnd: onEnd) { events, pump in
            let activity = ActivityDeadline(deadline: firstByteDeadline, phase: .firstByte, total: total)
            let alarm = timers.arm(activity) { phase in
                events.finish(throwing: UpstreamError.timeout(phase))
                pump.cancel()
            }
            defer { alarm.disarm() }
            do {
                for try await buffer in body {
                    activity.extend(to: .now + idle, phase: .idle)
                    if buffer.readableBytes > 0 { events.yield(Array(buffer.readableBytesView)) }
                }
            } catch {
                throw map(error, phase: .idle)
            }
        }
    }

    /// Turns client-library failures into the gateway's own vocabulary.
    static func map(_ error: any Error, phase: UpstreamError.Phase) -> any Error {
        if error is UpstreamError || error is CancellationError { return error }
        if let error = error as? HTTPClientError {
            switch error {
            case .deadlineExceeded: return UpstreamError.timeout(phase)
            case .connectTimeout: return UpstreamError.timeout(.connect)
            case .readTimeout: return UpstreamError.timeout(phase)
            case .cancelled: return CancellationError()
            case .remoteConnectionClosed: return UpstreamError.closedEarly
            default: break
            }
        }
        if error is NIOConnectionError || error is ChannelError { return UpstreamError.connectFailed }
        if let error = error as? IOError, [ECONNREFUSED, ECONNRESET, EHOSTUNREACH, ENETUNREACH].contains(error.errnoCode) {
            return error.errnoCode == ECONNRESET ? UpstreamError.closedEarly : UpstreamError.connectFailed
        }
        return UpstreamError.closedEarly
    }
}

/// The phase a watchdog's timer found expired, for the exchange it cancelled.
final class TimedOut: Sendable {
    let phase = Mutex<UpstreamError.Phase?>(nil)
}
