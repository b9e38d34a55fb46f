import Foundation
import Hummingbird
import NIOCore

/// Request context that keeps the channel, which scripted failures need to drop the connection.
struct FakeRequestContext: RequestContext {
    var coreContext: CoreRequestContextStorage
    let channel: any Channel

    init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        channel = source.channel
    }

    // Large enough for long-prompt benchmarks; a real upstream accepts big bodies too.
    var maxUploadSize: Int { 64 * 1024 * 1024 }
}

/// Routes by hand rather than through `Router`: four fixed endpoints do not need a trie,
/// and this keeps per-request work minimal for benchmarks.
struct FakeResponder: HTTPResponder {
    let state: FakeUpstreamState
    let defaults: FakeUpstreamDefaults

    private enum Endpoint {
        case chat
        case completions
        case embeddings
    }

    private static let modelsBody =
        #"{"object":"list","data":[{"id":"fake-model","object":"model","created":0,"owned_by":"switchyard-fake"}]}"#

    func respond(to request: Request, context: FakeRequestContext) async throws -> Response {
        let path = request.uri.path
        let bytes: ByteBuffer
        do {
            bytes = try await request.body.collect(upTo: context.maxUploadSize)
        } catch {
            return Self.error(status: 413, message: "Request body too large.", type: "invalid_request_error")
        }
        let body = Data(bytes.readableBytesView)
        let sequence = state.record(
            FakeUpstream.RecordedRequest(
                method: request.method.rawValue,
                path: path,
                headers: request.headers.map { (name: $0.name.rawName, value: $0.value) },
                body: body
            )
        )
        switch (request.method, path) {
        case (.get, "/v1/models"):
            return Self.json(Self.modelsBody)
        case (.post, "/v1/chat/completions"):
            return try await respond(to: .chat, body: body, sequence: sequence, channel: context.channel)
        case (.post, "/v1/completions"):
            return try await respond(to: .completions, body: body, sequence: sequence, channel: context.channel)
        case (.post, "/v1/embeddings"):
            return try await respond(to: .embeddings, body: body, sequence: sequence, channel: context.channel)
        case (.post, "/v1/responses"):
            return respondNatively(body: body, sequence: sequence, channel: context.channel)
        default:
            return Self.error(
                status: 404,
                message: "Unknown route \(request.method.rawValue) \(path).",
                type: "invalid_request_error",
                codeJSON: #""unknown_url""#
            )
        }
    }

    private func respond(
        to endpoint: Endpoint,
        body: Data,
        sequence: Int,
        channel: any Channel
    ) async throws -> Response {
        guard let json = (try? JSONSerialization.jsonObject(with: body)) as? [String: Any] else {
            return Self.error(
                status: 400,
                message: "We could not parse the JSON body of your request.",
                type: "invalid_request_error"
            )
        }
        let directives = FakeDirectives(
            json["fake"] as? [String: Any] ?? FakeDirectives.inMessages(json["messages"]), model: json["model"] as? String,
            defaults: defaults)
        if directives.firstByteDelayMs > 0 {
            try await Task.sleep(for: .milliseconds(directives.firstByteDelayMs))
        }
        if let crash = defaults.crash, let after = directives.crashAfter,
            after == 0 || endpoint == .embeddings || !(JSONValues.bool(json["stream"]) ?? false)
        {
            crash()
        }
        if directives.hangUp {
            throw StreamingResponse.dropConnection(channel)
        }
        if let status = directives.status {
            return Self.scriptedError(status: status, directives: directives)
        }
        let streams = endpoint != .embeddings && (JSONValues.bool(json["stream"]) ?? false)
        if !streams {
            // Nothing has been written yet, so the client gets no response at all.
            if directives.dieAfter != nil {
                throw StreamingResponse.dropConnection(channel)
            }
            if directives.stallAfter != nil {
                await StreamingResponse.stall(until: channel)
                throw StreamingResponse.dropConnection(channel)
            }
        }
        let created = Int(Date().timeIntervalSince1970)
        switch endpoint {
        case .embeddings:
            guard let payload = EmbeddingsPayload.body(for: json, directives: directives) else {
                return Self.error(
                    status: 400,
                    message: "'input' must be a string, an array of strings or an array of token arrays.",
                    type: "invalid_request_error"
                )
            }
            return Self.json(payload)
        case .chat, .completions:
            let plan = CompletionPlan(
                kind: endpoint == .chat ? .chat : .text,
                sequence: sequence,
                body: json,
                directives: directives,
                created: created
            )
            guard streams else { return Self.json(plan.responseBody) }
            return Response(
                status: .ok,
                headers: [.contentType: "text/event-stream", .cacheControl: "no-cache"],
                body: StreamingResponse.body(for: plan, channel: channel, crash: defaults.crash)
            )
        }
    }

    /// `POST /v1/responses`, answered in the Responses API's own shapes (`ResponsesPayloads`).
    private func respondNatively(body: Data, sequence: Int, channel: any Channel) -> Response {
        guard let json = (try? JSONSerialization.jsonObject(with: body)) as? [String: Any] else {
            return Self.error(status: 400, message: "We could not parse the JSON body of your request.", type: "invalid_request_error")
        }
        let fake = json["fake"] as? [String: Any]
        let directives = FakeDirectives(fake, model: json["model"] as? String, defaults: defaults)
        if let status = directives.status { return Self.scriptedError(status: status, directives: directives) }
        let plan = CompletionPlan(
            kind: .chat, sequence: sequence, body: ResponsesPayloads.chatShaped(json), directives: directives,
            created: Int(Date().timeIntervalSince1970))
        guard JSONValues.bool(json["stream"]) ?? false else { return Self.json(ResponsesPayloads.wholeBody(plan)) }
        return Response(
            status: .ok, headers: [.contentType: "text/event-stream", .cacheControl: "no-cache"],
            body: ResponsesPayloads.body(
                for: plan, errorEvent: JSONValues.bool(fake?["error_event"]) ?? false, channel: channel))
    }

    private static func scriptedError(status: Int, directives: FakeDirectives) -> Response {
        // HTTPResponse.Status traps outside 0...999, and clients choke on non-error codes here.
        let code = (100...599).contains(status) ? status : 500
        let type = directives.errorType ?? (code >= 500 ? "server_error" : "invalid_request_error")
        var response = error(
            status: code,
            message: directives.message ?? "fake upstream error",
            type: type,
            codeJSON: directives.codeJSON
        )
        if let retryAfter = directives.retryAfter {
            response.headers[.retryAfter] = retryAfter
        }
        return response
    }

    private static func error(status: Int, message: String, type: String, codeJSON: String = "null") -> Response {
        json(JSONText.errorBody(message: message, type: type, codeJSON: codeJSON), status: .init(code: status))
    }

    private static func json(_ text: String, status: HTTPResponse.Status = .ok) -> Response {
        Response(
            status: status,
            headers: [.contentType: "application/json"],
            body: ResponseBody(byteBuffer: ByteBuffer(string: text))
        )
    }
}
