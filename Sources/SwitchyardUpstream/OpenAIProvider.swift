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
    /// `onEnd` runs once the exchange is over — the whole body read, a stream's connection drained or
    /// closed — or at once when it fails before it starts; once, on every path.
    func send(
        _ request: UpstreamRequest, logger: Logger, baseURL: String, onEnd: @escaping @Sendable () -> Void = {}
    ) async throws -> UpstreamResponse {
        let lease: GateLease
        let outgoing: HTTPClient.Request
        let started = ContinuousClock.now
        let total = config.timeouts.total.map { started + $0 }
        let firstByteDeadline = min(started + config.timeouts.firstByte, total ?? .now + .seconds(86_400 * 365))
        do {
            outgoing = try self.outgoing(request, baseURL: baseURL)
            // Waiting for a connection counts towards the first byte, as it does inside the HTTP client.
            lease = try await acquireSlot(until: firstByteDeadline)
        } catch {
            onEnd()
            throw Self.map(error, phase: .firstByte)
        }
        let isLastEvent = request.endpoint == .responses ? Self.isLastResponsesEvent : self.isLastEvent
        // Media streams (partial images, transcripts, speech events) end with the body, not `[DONE]`.
        let endsAtEOF = request.endpoint.output == .media
        let isSpeech = request.endpoint == .speech
        let opened = try await UpstreamCall.open(
            outgoing, client: client, timers: timers, firstByte: firstByteDeadline, total: total,
            idle: config.timeouts.idle, logger: logger.heldAtDebug,
            decide: { head in
                guard (200..<300).contains(head.status.code) else { return .whole(limit: Self.maxResponseBytes) }
                if head.headers.first(name: "content-type")?.lowercased().hasPrefix("text/event-stream") ?? false {
                    return .events(isLastEvent: isLastEvent, endsAtEOF: endsAtEOF)
                }
                // Audio is relayed as it arrives: each piece of the body is one "event" of raw bytes.
                return isSpeech ? .pieces : .whole(limit: Self.maxResponseBytes)
            },
            onEnd: {
                lease.release()
                onEnd()
            })
        switch opened {
        case .whole(let status, let headers, let bytes):
            return UpstreamResponse(status: status, headers: Self.passedOn(headers), body: .complete(bytes))
        case .streaming(let status, let headers, let events):
            return UpstreamResponse(status: status, headers: Self.passedOn(headers), body: .events(events))
        }
    }

    private func outgoing(_ request: UpstreamRequest, baseURL: String) throws -> HTTPClient.Request {
        var headers = fixedHeaders
        for (name, value) in request.headers { headers.replaceOrAdd(name: name, value: value) }
        headers.add(name: "accept", value: request.stream ? "text/event-stream" : "application/json")
        let (body, contentType) = request.encoded(boundary: "switchyard-" + ResponseIdentity.randomID())
        headers.add(name: "content-type", value: contentType)
        return try HTTPClient.Request(
            url: baseURL + request.endpoint.path, method: .POST, headers: headers, body: .byteBuffer(ByteBuffer(bytes: body)))
    }

    /// The upstream's headers a caller may need: `retry-after` and `content-type`.
    static func passedOn(_ headers: HTTPHeaders) -> [(name: String, value: String)] {
        var passed: [(name: String, value: String)] = []
        if let retryAfter = headers.first(name: "retry-after") { passed.append(("retry-after", retryAfter)) }
        if let contentType = headers.first(name: "content-type") { passed.append(("content-type", contentType)) }
        return passed
    }

    /// A midjourney-proxy call: `path` below the base URL (the proxy's root, e.g. `http://mj:8080`),
    /// the key also as `mj-api-secret`, as those proxies read it.
    public func task(method: String, path: String, body: [UInt8]?, logger: Logger) async throws -> (status: Int, body: [UInt8]) {
        var headers = fixedHeaders
        if let key = config.apiKey { headers.replaceOrAdd(name: "mj-api-secret", value: key) }
        headers.add(name: "accept", value: "application/json")
        if body != nil { headers.add(name: "content-type", value: "application/json") }
        let outgoing: HTTPClient.Request
        do {
            outgoing = try HTTPClient.Request(
                url: baseURL + path, method: method == "GET" ? .GET : .POST, headers: headers,
                body: body.map { .byteBuffer(ByteBuffer(bytes: $0)) })
        } catch {
            throw Self.map(error, phase: .firstByte)
        }
        let deadline = ContinuousClock.now + config.timeouts.firstByte
        let lease = try await acquireSlot(until: deadline)
        let opened = try await UpstreamCall.open(
            outgoing, client: client, timers: timers, firstByte: deadline, total: nil, idle: config.timeouts.idle,
            logger: logger.heldAtDebug, decide: { _ in .whole(limit: Self.maxResponseBytes) }, onEnd: { lease.release() })
        guard case .whole(let status, _, let bytes) = opened else { throw UpstreamError.closedEarly }
        return (status, bytes)
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
