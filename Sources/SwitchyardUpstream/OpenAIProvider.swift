import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import SwitchyardCore

/// An OpenAI-compatible upstream over HTTP: OpenAI itself, vLLM, llama.cpp, Ollama, other gateways.
public struct OpenAIProvider: Provider {
    public let config: ProviderConfig
    let client: HTTPClient
    private let baseURL: String
    private let fixedHeaders: HTTPHeaders

    /// Largest whole (non-streamed) upstream body the gateway accepts.
    static let maxResponseBytes = 64 * 1024 * 1024

    init(config: ProviderConfig, client: HTTPClient) {
        self.config = config
        self.client = client
        self.baseURL = config.baseURL.hasSuffix("/") ? String(config.baseURL.dropLast()) : config.baseURL
        var headers = HTTPHeaders()
        headers.add(name: "content-type", value: "application/json")
        if let key = config.apiKey { headers.add(name: "authorization", value: "Bearer \(key)") }
        for (name, value) in config.headers.sorted(by: { $0.key < $1.key }) { headers.add(name: name, value: value) }
        self.fixedHeaders = headers
    }

    public func send(_ request: UpstreamRequest, logger: Logger) async throws -> UpstreamResponse {
        var outgoing = HTTPClientRequest(url: baseURL + request.endpoint.path)
        outgoing.method = .POST
        outgoing.headers = fixedHeaders
        outgoing.headers.add(name: "accept", value: request.stream ? "text/event-stream" : "application/json")
        let body = request.body.serialized()
        outgoing.body = .bytes(body)

        let firstByteDeadline = ContinuousClock.now + config.timeouts.firstByte
        let response: HTTPClientResponse
        do {
            response = try await client.execute(outgoing, deadline: .now() + .init(config.timeouts.firstByte), logger: logger)
        } catch {
            throw Self.map(error, phase: .firstByte)
        }
        let status = Int(response.status.code)
        var headers: [(name: String, value: String)] = []
        if let retryAfter = response.headers.first(name: "retry-after") { headers.append(("retry-after", retryAfter)) }

        let isEventStream = response.headers.first(name: "content-type")?.lowercased().hasPrefix("text/event-stream") ?? false
        if (200..<300).contains(status) && isEventStream {
            let events = Self.events(of: response.body, firstByteDeadline: firstByteDeadline, idle: config.timeouts.idle)
            return UpstreamResponse(status: status, headers: headers, body: .events(events))
        }
        let bytes = try await Self.collect(response.body, firstByteDeadline: firstByteDeadline, idle: config.timeouts.idle)
        return UpstreamResponse(status: status, headers: headers, body: .complete(bytes))
    }

    /// Reads a whole body, failing if the upstream goes quiet for longer than `idle`.
    static func collect(_ body: HTTPClientResponse.Body, firstByteDeadline: ContinuousClock.Instant, idle: Duration)
        async throws -> [UInt8]
    {
        let activity = ActivityDeadline(deadline: firstByteDeadline, phase: .firstByte)
        return try await withThrowingTaskGroup(of: [UInt8]?.self) { group in
            group.addTask {
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
            group.addTask { throw UpstreamError.timeout(try await activity.watch()) }
            defer { group.cancelAll() }
            while let result = try await group.next() {
                if let bytes = result { return bytes }
            }
            throw UpstreamError.closedEarly
        }
    }

    /// Parses the SSE body in a task of its own. After `[DONE]` the consumer is released at once while
    /// the rest of the body is drained, so that the connection goes back to the pool.
    static func events(of body: HTTPClientResponse.Body, firstByteDeadline: ContinuousClock.Instant, idle: Duration)
        -> UpstreamEvents
    {
        EventPump.start { events in
            let activity = ActivityDeadline(deadline: firstByteDeadline, phase: .firstByte)
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    var parser = SSEParser()
                    var done = false
                    let emit: ([UInt8]) -> Void = { payload in
                        guard !done else { return }
                        if SSEParser.isDone(payload) {
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
                    if !done { throw UpstreamError.closedEarly }
                }
                group.addTask {
                    let phase = try await activity.watch()
                    let error = UpstreamError.timeout(phase)
                    events.finish(throwing: error)
                    throw error
                }
                defer { group.cancelAll() }
                try await group.next()
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
