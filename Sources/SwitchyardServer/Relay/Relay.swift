import Foundation
import Hummingbird
import Logging
import NIOCore
import SwitchyardCore
import SwitchyardUpstream

/// Relays one inference request: validates it, resolves the model, rewrites only `model` (and
/// what streaming needs), sends it upstream and returns the answer stamped with the gateway's
/// identity, converting between streamed and whole answers where client and upstream differ.
struct Relay: Sendable {
    let catalog: Catalog
    let providers: Providers
    let connections: ClientConnections
    let maxBodyBytes: Int

    func handle(_ endpoint: Endpoint, request: Request, context: GatewayRequestContext) async throws -> Response {
        let inference = try InferenceRequest(endpoint: endpoint, bytes: try await readBody(request))
        guard let model = catalog.model(named: inference.model) else { throw GatewayError.modelNotFound(inference.model) }
        guard model.endpoints.contains(endpoint) else {
            throw GatewayError.unsupported(
                "The model '\(model.name)' does not support \(endpoint.path.dropFirst()).", param: "model")
        }
        // Routing across several deployments, retries and fallbacks come with the routing work;
        // until then a model is served by its first deployment.
        let deployment = model.deployments[0]
        guard let provider = providers[deployment.provider] else { throw GatewayError.internalError }
        let plan = RelayPlan(inference: inference, model: model, deployment: deployment, provider: provider.config)
        let client = connections.connection(for: context.channel)
        let logger = context.logger
        let providerName = provider.config.name

        let upstream: UpstreamResponse
        do {
            upstream = try await untilClientGone(client) { try await provider.send(plan.upstream, logger: logger) }
        } catch {
            throw UpstreamFailure.gatewayError(error, provider: providerName)
        }
        guard (200..<300).contains(upstream.status) else {
            guard case .complete(let body) = upstream.body else { throw GatewayError.internalError }
            throw UpstreamFailure.fromStatus(upstream.status, body: body, headers: upstream.headers, provider: providerName)
        }

        switch (inference.stream, upstream.body) {
        case (false, .complete(let bytes)):
            var object = try Self.parseObject(bytes, provider: providerName)
            plan.identity.stamp(&object, endpoint: endpoint)
            return Self.json(object)

        case (false, .events(let events)):
            let object = try await aggregate(events, plan: plan, client: client, provider: providerName)
            return Self.json(object)

        case (true, .complete(let bytes)):
            let object = try Self.parseObject(bytes, provider: providerName)
            let chunks = StreamSynthesizer.chunks(
                from: object, endpoint: endpoint, identity: plan.identity, includeUsage: inference.includeUsage)
            return Self.eventStream { writer in
                for chunk in chunks { try await writer.write(ByteBuffer(bytes: SSE.event(chunk))) }
                try await writer.write(ByteBuffer(bytes: SSE.done))
            }

        case (true, .events(let events)):
            // The first event is awaited before the status is sent: an upstream that fails before
            // producing anything gets an honest HTTP error instead of a 200 with an error inside.
            let first: [UInt8]?
            do {
                first = try await untilClientGone(client) { try await events.next() }
            } catch {
                events.cancel()
                throw UpstreamFailure.gatewayError(error, provider: providerName)
            }
            let relay = StreamRelay(identity: plan.identity, endpoint: endpoint, clientWantsUsage: inference.includeUsage)
            return Self.eventStream { writer in
                try await Self.pipe(
                    events, first: first, relay: relay, client: client, provider: providerName, into: &writer)
            }
        }
    }

    private func readBody(_ request: Request) async throws -> [UInt8] {
        if let length = request.headers[.contentLength].flatMap({ Int($0) }), length > maxBodyBytes {
            throw GatewayError.bodyTooLarge(limit: maxBodyBytes)
        }
        do {
            let buffer = try await request.body.collect(upTo: maxBodyBytes)
            return Array(buffer.readableBytesView)
        } catch let error as NIOTooManyBytesError {
            _ = error
            throw GatewayError.bodyTooLarge(limit: maxBodyBytes)
        }
    }

    /// Streams events to the client as they arrive. Ends with `[DONE]` only when the upstream
    /// finished; an upstream failure becomes a final error event, so a client never mistakes a cut
    /// answer for a whole one.
    static func pipe(
        _ events: UpstreamEvents,
        first: [UInt8]?,
        relay: StreamRelay,
        client: ClientConnection?,
        provider: String,
        into writer: inout any ResponseBodyWriter
    ) async throws {
        var relay = relay
        let registration = client?.onGone { events.cancel() }
        defer { registration?.cancel() }
        var next = first
        var finished = first == nil
        do {
            while let payload = next {
                switch try relay.relay(payload) {
                case .forward(let bytes):
                    try await writer.write(ByteBuffer(bytes: bytes))
                case .drop:
                    break
                case .upstreamError(let error):
                    events.cancel()
                    try await writer.write(ByteBuffer(bytes: SSE.errorEvent(error)))
                    return
                }
                next = try await events.next()
                finished = next == nil
            }
        } catch is CancellationError {
            events.cancel()
            throw CancellationError()
        } catch {
            events.cancel()
            if client?.isGone == true { throw error }
            let failure = UpstreamFailure.gatewayError(error, provider: provider)
            try await writer.write(ByteBuffer(bytes: SSE.errorEvent(failure.errorObject)))
            return
        }
        if finished { try await writer.write(ByteBuffer(bytes: SSE.done)) }
    }

    private func aggregate(_ events: UpstreamEvents, plan: RelayPlan, client: ClientConnection?, provider: String)
        async throws -> JSONObject
    {
        let endpoint = plan.upstream.endpoint
        let identity = plan.identity
        do {
            return try await untilClientGone(client) {
                var aggregator = StreamAggregator(endpoint: endpoint)
                while let payload = try await events.next() {
                    guard case .object(let chunk) = try? JSONValue.parse(payload) else {
                        throw UpstreamError.invalidResponse("a stream event is not a JSON object")
                    }
                    if let error = chunk["error"]?.objectValue {
                        throw GatewayError.upstreamBroken(provider, error["message"]?.stringValue ?? "error event")
                    }
                    aggregator.add(chunk)
                }
                return aggregator.response(identity: identity)
            }
        } catch {
            events.cancel()
            throw UpstreamFailure.gatewayError(error, provider: provider)
        }
    }

    static func parseObject(_ bytes: [UInt8], provider: String) throws -> JSONObject {
        guard case .object(let object) = try? JSONValue.parse(bytes) else {
            throw GatewayError.upstreamBroken(provider, "its answer is not a JSON object")
        }
        return object
    }

    static func json(_ object: JSONObject) -> Response {
        Response(
            status: .ok,
            headers: [.contentType: "application/json"],
            body: .init(byteBuffer: ByteBuffer(bytes: object.serialized()))
        )
    }

    static func eventStream(_ write: @escaping @Sendable (inout any ResponseBodyWriter) async throws -> Void) -> Response {
        Response(
            status: .ok,
            headers: [.contentType: "text/event-stream", .cacheControl: "no-cache"],
            body: ResponseBody { writer in
                try await write(&writer)
                try await writer.finish(nil)
            }
        )
    }
}

/// What one request becomes on its way upstream.
struct RelayPlan: Sendable {
    let upstream: UpstreamRequest
    let identity: ResponseIdentity

    init(inference: InferenceRequest, model: ModelConfig, deployment: ModelConfig.Deployment, provider: ProviderConfig) {
        var body = inference.body
        body["model"] = .string(deployment.model)
        let endpoint = inference.endpoint
        let stream: Bool
        switch provider.stream {
        case .native: stream = inference.stream
        case .none: stream = false
        case .always: stream = endpoint.canStream
        }
        if stream {
            // Usage is always asked for, so that every streamed request can be metered; the client
            // sees the usage chunk only if it asked for it.
            body["stream"] = true
            var options = body["stream_options"]?.objectValue ?? JSONObject()
            options["include_usage"] = true
            body["stream_options"] = .object(options)
        } else if endpoint.canStream {
            if body["stream"] != nil { body["stream"] = false }
            body["stream_options"] = nil
        }
        upstream = UpstreamRequest(endpoint: endpoint, body: body, stream: stream)
        identity = .make(for: endpoint, model: model.name, created: Int(Date().timeIntervalSince1970))
    }
}
