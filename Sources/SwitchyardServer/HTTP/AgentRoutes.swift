import HTTPTypes
import Hummingbird
import NIOCore
import SwitchyardCore

/// The APIs coding agents speak, served for every chat model whatever its upstream speaks:
/// OpenAI Responses (`/v1/responses`) and Anthropic Messages (`/v1/messages`, errors in Anthropic's
/// shape), in the `/v1/…` style and the seed's `/llm_api/{openid}/{userid}/{AI_system}/v1/…` style.
struct AgentRoutes: Sendable {
    let relay: Relay
    let stops: Stops
    let authenticator: Authenticator
    let catalog: Catalog
    let router: DeploymentRouter

    func addRoutes(to router: Router<GatewayRequestContext>) {
        router.post("v1/responses") { request, context in
            try refuseWebSocket(request)
            return try await relay.handle(.chatCompletions, dialect: .responses, request: request, context: context)
        }
        // Codex CLI first tries a WebSocket on the same URL; 426 is what makes it fall back to HTTP.
        router.get("v1/responses") { request, _ -> Response in
            try refuseWebSocket(request)
            throw GatewayError.methodNotAllowed("GET", "/v1/responses")
        }
        router.get("v1/responses/{id}") { request, context in
            let caller = try await authenticator.authenticate(request.bearerToken)
            let id = try context.parameters.require("id")
            guard let running = try await stops.running(id: id, accountID: caller.account.id) else { throw Self.notStored(id) }
            return Relay.json(Self.inProgress(id: id, model: running.model, created: running.created))
        }
        router.post("v1/responses/{id}/cancel") { request, context in
            let caller = try await authenticator.authenticate(request.bearerToken)
            let id = try context.parameters.require("id")
            guard let running = try await stops.stop(id: id, accountID: caller.account.id) else { throw Self.notStored(id) }
            var object = Self.inProgress(id: id, model: running.model, created: running.created)
            object["status"] = "cancelled"
            object["end_reason"] = "cancelled"
            return Relay.json(object)
        }
        router.post("v1/messages") { request, context in
            try await Self.anthropicErrors {
                try await relay.handle(.chatCompletions, dialect: .anthropic, request: request, context: context)
            }
        }
        router.post("v1/messages/count_tokens") { request, context in
            try await Self.anthropicErrors { try await countTokens(request, context: context) }
        }
    }

    /// A WebSocket upgrade is answered 426: Switchyard serves Responses over HTTP and SSE.
    private func refuseWebSocket(_ request: Request) throws {
        guard request.headers[.upgrade]?.lowercased().contains("websocket") == true else { return }
        throw GatewayError(
            status: 426,
            message: "Switchyard serves the Responses API over HTTP with server-sent events, not WebSocket: POST to /v1/responses.",
            type: "invalid_request_error", code: "upgrade_required",
            // The HTTP parser stops reading a connection once it asked to upgrade: it closes after this.
            headers: [("upgrade", "HTTP/1.1"), ("connection", "close")])
    }

    static func notStored(_ id: String) -> GatewayError {
        GatewayError(
            status: 404,
            message: "No response with id '\(id)' is running. Switchyard does not store responses: once finished, a response exists only in the answer that carried it.",
            type: "invalid_request_error", param: "response_id", code: "not_found")
    }

    /// What is known of a response in flight: its id, model and start; nothing of its content.
    static func inProgress(id: String, model: String, created: Int) -> JSONObject {
        let answer = ResponsesAnswer(request: [:], identity: ResponseIdentity(id: id, model: model, created: created))
        return answer.template
    }

    /// Runs `body`, answering its errors in Anthropic's shape.
    static func anthropicErrors(_ body: () async throws -> Response) async throws -> Response {
        do {
            return try await body()
        } catch let error as GatewayError {
            return anthropicResponse(error)
        } catch let error as any HTTPResponseError {
            return anthropicResponse(
                GatewayError(status: Int(error.status.code), message: error.status.reasonPhrase, type: "invalid_request_error"))
        }
    }

    static func anthropicResponse(_ error: GatewayError) -> Response {
        var fields = HTTPFields()
        fields[.contentType] = "application/json"
        fields.add(error.headers)
        return Response(
            status: .init(code: error.httpStatus), headers: fields,
            body: .init(byteBuffer: ByteBuffer(bytes: error.anthropicBody.serialized())))
    }

    /// `POST /v1/messages/count_tokens`: from the best tokenizer available — an Anthropic upstream's
    /// own count, the engine's tokenizer, else the gateway's estimate.
    private func countTokens(_ request: Request, context: GatewayRequestContext) async throws -> Response {
        let caller = try await authenticator.authenticate(anyOf: [request.bearerToken, request.headers[.xAPIKey]])
        var original = try InferenceRequest.object(try await relay.readBody(request))
        if original["max_tokens"] == nil { original["max_tokens"] = 1 }
        let inference = try InferenceRequest(dialect: .anthropic, bytes: original.serialized())
        guard let model = catalog.model(named: inference.model) else { throw GatewayError.modelNotFound(inference.model) }
        guard caller.mayUse(model) else { throw GatewayError.modelNotAllowed(inference.model) }
        let estimate = TokenEstimate.prompt(of: inference.body, endpoint: .chatCompletions)
        for candidate in router.candidates(for: model, endpoint: .chatCompletions) {
            let provider = candidate.provider
            if provider.config.kind == .anthropic {
                var body = original
                body["model"] = .string(candidate.deployment.model)
                body["max_tokens"] = nil
                let upstream = UpstreamRequest(
                    endpoint: .messagesCountTokens, body: body, stream: false, headers: request.passthroughHeaders)
                if let answer = try? await provider.send(upstream, logger: context.logger),
                    (200..<300).contains(answer.status), case .complete(let bytes) = answer.body,
                    let count = (try? JSONValue.parse(bytes))?["input_tokens"]?.intValue
                {
                    return Relay.json(["input_tokens": .int(count)])
                }
            } else if let template = provider.config.tokenizer?.chatTemplate, provider.isReady,
                let prompt = template.render(inference.body["messages"]),
                let count = try? await provider.countTokens(prompt, logger: context.logger)
            {
                return Relay.json(["input_tokens": .int(count)])
            }
            break
        }
        return Relay.json(["input_tokens": .int(estimate)])
    }
}
