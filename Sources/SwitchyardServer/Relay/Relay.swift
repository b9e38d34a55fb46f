import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import SwitchyardCore
import SwitchyardUpstream

/// Relays one inference request: authenticates the caller, validates the body, resolves the model,
/// takes a hold for the worst-case cost, rewrites only `model` (and what streaming needs), sends it
/// upstream, returns the answer stamped with the gateway's identity — converting between streamed
/// and whole answers where client and upstream differ — and settles the hold exactly once.
struct Relay: Sendable {
    let catalog: Catalog
    let connections: ClientConnections
    let billing: Billing
    let inFlight: InFlight
    let maxBodyBytes: Int
    let router: DeploymentRouter
    let limits: Limits
    let clock: any GatewayClock
    /// `server.loading_notice_interval`.
    let loadingNotice: Duration
    /// Uploads that chat messages may name (nil when the store keeps none).
    var uploads: Uploads?
    /// `audio.max_upload_bytes`: the body limit of transcriptions and translations.
    var audioUploadLimit = 25 * 1024 * 1024

    /// The body limit of `endpoint`: `server.max_body_bytes`; transcriptions' is `audio.max_upload_bytes`,
    /// image edits' at least `files.max_bytes`.
    func bodyLimit(_ endpoint: Endpoint) -> Int {
        switch endpoint {
        // The limit is the file's (checked once the form is read); the form around it may add a little.
        case .transcriptions, .translations: audioUploadLimit + 64 * 1024
        case .imageEdits, .imageVariations: max(maxBodyBytes, (uploads?.settings.maxBytes ?? 0) + 64 * 1024)
        default: maxBodyBytes
        }
    }

    /// How the caller named itself and the model: `Authorization: Bearer` and the body (`/v1/…`), or
    /// the seed service's path segments (`/llm_api/{openid}/{userid}/{AI_system}/v1/…`).
    struct CallStyle: Sendable {
        /// The key from the path; when it is not a valid key, a bearer header is tried.
        var pathKey: String?
        /// The end user from the path; otherwise the body's `user`.
        var pathUser: String?
        /// The model from the path; empty or nil means the body's `model`.
        var pathModel: String?

        static let bearer = CallStyle()
    }

    /// `dialect`: the API the caller speaks; a Responses or Messages request is relayed as chat
    /// completions (`endpoint`), translated or passed through per deployment (`Exchange+dialect`).
    ///
    /// Runs in the request's own task (`TaskPerRequest`), not the connection's: its async
    /// frame alone is 14 KB, and the connection's task would keep the slabs it grew for as long as
    /// the connection lives.
    func handle(
        _ endpoint: Endpoint, dialect: Dialect = .openAI, request: Request, context: GatewayRequestContext,
        style: CallStyle = .bearer
    ) async throws -> Response {
        let arrivedAt = clock.now
        let caller = try await billing.authenticator.authenticate(
            anyOf: [style.pathKey, request.bearerToken] + (dialect == .anthropic ? [request.headers[.xAPIKey]] : []))
        let bytes = try await readBody(request, limit: bodyLimit(endpoint))
        var inference: InferenceRequest
        if endpoint.output == .media {
            inference =
                endpoint.body == .multipart
                ? try MediaRequest.multipart(
                    endpoint: endpoint, bytes: bytes, contentType: request.headers[.contentType], modelOverride: style.pathModel)
                : try MediaRequest.json(endpoint: endpoint, bytes: bytes, modelOverride: style.pathModel)
        } else if dialect == .openAI {
            inference = try InferenceRequest(endpoint: endpoint, bytes: bytes, modelOverride: style.pathModel)
        } else {
            inference = try InferenceRequest(
                dialect: dialect, bytes: bytes, modelOverride: style.pathModel, headers: request.passthroughHeaders,
                passesThrough: { [catalog, router] name in
                    guard let model = catalog.model(named: name) else { return false }
                    return router.candidates(for: model, endpoint: .chatCompletions).first?.provider.config
                        .speaksNatively(dialect) ?? false
                })
        }
        if endpoint == .transcriptions || endpoint == .translations, let file = inference.form?["file"],
            file.data.count > audioUploadLimit
        {
            throw GatewayError.bodyTooLarge(limit: audioUploadLimit)
        }
        let usedFiles = try await uploads?.resolve(&inference, accountID: caller.account.id) ?? []
        guard let model = catalog.model(named: inference.model) else { throw GatewayError.modelNotFound(inference.model) }
        guard caller.mayUse(model) else { throw GatewayError.modelNotAllowed(inference.model) }
        guard model.endpoints.contains(endpoint) else {
            throw GatewayError.unsupported(
                "The model '\(model.name)' does not support \(endpoint.path.dropFirst()).", param: "model")
        }
        let endUser = style.pathUser ?? inference.body["user"]?.stringValue
        context.record?.identified(caller: caller, endUser: endUser, model: model, inference: inference)
        // Once per request: the context check, the rate limiter's token estimate, the hold and the
        // metering all use it.
        let promptEstimate = TokenEstimate.prompt(of: inference.body, endpoint: inference.endpoint)
        try ContextWindow.admit(&inference, model: model, promptEstimate: promptEstimate)
        let candidates = router.candidates(for: model, endpoint: endpoint)
        guard let first = candidates.first else { throw GatewayError.internalError }
        let plan = RelayPlan(
            inference: inference, model: model, deployment: first.deployment, provider: first.provider.config,
            created: Int(clock.unixSeconds))
        let admission = try await limits.admit(
            model: model, caller: caller, endUser: endUser, inference: inference, promptEstimate: promptEstimate)
        let limitHeaders = admission.snapshot.headers
        let requestID = plan.identity.id
        let inFlight = self.inFlight
        // Admissions under fallback models' own limits, made if routing reaches them.
        let fallbackAdmissions = Admissions()
        let ticket: BillingTicket
        do {
            ticket = try await billing.admit(
                plan: plan, inference: inference, promptEstimate: promptEstimate, model: model, caller: caller,
                endUser: endUser, arrivedAt: arrivedAt,
                requestLifecycle: router.lifecycle(for: candidates, model: model.name, arrivedAt: arrivedAt),
                logger: context.logger, record: context.record,
                onSettled: { [uploads, logger = context.logger] settlement in
                    uploads?.deleteAfterUse(usedFiles, accountID: settlement.accountID, logger: logger)
                    inFlight.unregister(id: requestID)
                    admission.finish(tokens: settlement.promptTokens + settlement.completionTokens)
                    fallbackAdmissions.finishAll()
                })
        } catch {
            admission.revoke()
            throw (error as? GatewayError)?.adding(headers: limitHeaders) ?? error
        }
        let stop = Signal()
        inFlight.register(
            id: requestID, accountID: caller.account.id, endUser: endUser, stop: stop, model: model.name,
            created: plan.identity.created)
        let client = connections.connection(for: context.channel)
        let cooldowns = router.cooldowns
        do {
            var response = try await router.serve(
                candidates, ticket: ticket, signals: [client], stop: stop, logger: context.logger,
                admitFallback: { model throws(GatewayError) in
                    let admitted = try await limits.admitFallback(model)
                    fallbackAdmissions.add(admitted)
                }
            ) { candidate -> any RelayAttempt in
                let attemptPlan = plan.retargeted(candidate.deployment, provider: candidate.provider.config, inference: inference)
                if endpoint.output == .media {
                    return MediaExchange(
                        plan: attemptPlan, inference: inference, provider: candidate.provider, ticket: ticket,
                        client: client, stop: stop, logger: context.logger,
                        answered: { cooldowns.succeeded(candidate.deployment.id) }, price: candidate.model.price,
                        maxSeconds: candidate.model.maxSeconds)
                }
                return Exchange(
                    plan: attemptPlan,
                    inference: inference, provider: candidate.provider, ticket: ticket, client: client, stop: stop,
                    logger: context.logger, answered: { cooldowns.succeeded(candidate.deployment.id) },
                    loadingNotice: loadingNotice, clock: clock)
            }
            response.add(headers: limitHeaders)
            return response
        } catch {
            // Every path above settles through the request's lifecycle; should one not have, the
            // error settles it now (a settled lifecycle ignores this).
            let failure = UpstreamFailure.gatewayError(error, provider: first.provider.config.name)
            let gone = error is CancellationError || client?.hasFired == true
            let action = ticket.handle(gone ? .clientGone(charge: false) : .upstreamFailed(failure, charge: false))
            if let outcome = action.outcome { await ticket.settle(outcome) }
            throw failure.adding(headers: limitHeaders)
        }
    }

    func readBody(_ request: Request, limit: Int? = nil) async throws -> [UInt8] {
        try await request.collectBody(upTo: limit ?? maxBodyBytes)
    }

    static func json(_ object: JSONObject, status: HTTPResponse.Status = .ok) -> Response {
        Response(
            status: status,
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

extension HTTPField.Name {
    static let xAPIKey = Self("x-api-key")!
    static let anthropicVersion = Self("anthropic-version")!
    static let anthropicBeta = Self("anthropic-beta")!
}

extension Request {
    /// The whole body, at most `limit` bytes (a declared or actual larger one is 413).
    func collectBody(upTo limit: Int) async throws -> [UInt8] {
        if let length = headers[.contentLength].flatMap({ Int($0) }), length > limit {
            throw GatewayError.bodyTooLarge(limit: limit)
        }
        do {
            return Array(try await body.collect(upTo: limit).readableBytesView)
        } catch is NIOTooManyBytesError {
            throw GatewayError.bodyTooLarge(limit: limit)
        }
    }

    /// The caller's headers a passed-through Messages request carries upstream.
    var passthroughHeaders: [(name: String, value: String)] {
        let fields: [(HTTPField.Name, String)] = [(.anthropicVersion, "anthropic-version"), (.anthropicBeta, "anthropic-beta")]
        return fields.compactMap { field -> (name: String, value: String)? in
            let values = headers[values: field.0]
            return values.isEmpty ? nil : (field.1, values.joined(separator: ","))
        }
    }

    /// The token of `Authorization: Bearer TOKEN` (the scheme in any case, spaces and tabs around
    /// the token dropped), read as bytes: no Unicode case mapping or character sets on every request.
    var bearerToken: String? {
        guard let header = headers[.authorization] else { return nil }
        var bytes = Substring(header).utf8[...]
        let scheme = Array("bearer".utf8)
        guard bytes.count > scheme.count,
            zip(bytes.prefix(scheme.count), scheme).allSatisfy({ ($0 | 0x20) == $1 }),
            bytes[bytes.index(bytes.startIndex, offsetBy: scheme.count)] == UInt8(ascii: " ")
        else { return nil }
        bytes = bytes.dropFirst(scheme.count + 1)
        func isSpace(_ byte: UInt8) -> Bool { byte == 0x20 || byte == 0x09 }
        while let first = bytes.first, isSpace(first) { bytes = bytes.dropFirst() }
        while let last = bytes.last, isSpace(last) { bytes = bytes.dropLast() }
        return String(Substring(bytes))
    }
}

/// What one request becomes on its way upstream.
struct RelayPlan: Sendable {
    private(set) var upstream: UpstreamRequest
    let identity: ResponseIdentity
    let deployment: String

    /// The same plan without the upstream body's content (the endpoint and flags stay), once it has
    /// been sent: a relayed stream no longer needs it.
    func withoutBody() -> RelayPlan {
        var plan = self
        plan.upstream.payload = .json(JSONObject())
        return plan
    }

    init(
        inference: InferenceRequest, model: ModelConfig, deployment: ModelConfig.Deployment, provider: ProviderConfig,
        created: Int
    ) {
        self.init(
            inference: inference, deployment: deployment, provider: provider,
            identity: .make(for: inference.dialect.nativeEndpoint ?? inference.endpoint, model: model.name, created: created))
    }

    private init(
        inference: InferenceRequest, deployment: ModelConfig.Deployment, provider: ProviderConfig, identity: ResponseIdentity
    ) {
        if let native = inference.dialect.nativeEndpoint, provider.speaksNatively(inference.dialect),
            var body = inference.original
        {
            // Passed through: the caller's own request, only `model` rewritten, streamed as asked —
            // and, for Responses, `store: false`: nothing of it is kept, upstream either.
            body["model"] = .string(deployment.model)
            if native == .responses { body["store"] = false }
            upstream = UpstreamRequest(
                endpoint: native, body: body, stream: inference.stream, headers: inference.passthroughHeaders)
            self.identity = identity
            self.deployment = deployment.id
            return
        }
        if inference.endpoint.output == .media {
            // Media requests go as they came (the form's fields and files exactly), `model` rewritten.
            let payload: UpstreamRequest.Payload
            if var form = inference.form {
                form.parts.removeAll { $0.name == "model" }
                form.parts.insert(.init(name: "model", data: Array(deployment.model.utf8)), at: 0)
                payload = .multipart(form)
            } else {
                var body = inference.body
                body["model"] = .string(deployment.model)
                payload = .json(body)
            }
            upstream = UpstreamRequest(endpoint: inference.endpoint, payload: payload, stream: inference.stream)
            self.identity = identity
            self.deployment = deployment.id
            return
        }
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
        self.identity = identity
        self.deployment = deployment.id
    }

    /// The same request for another deployment (a retry or a fallback); the client still sees one id
    /// and the model it asked for.
    func retargeted(_ deployment: ModelConfig.Deployment, provider: ProviderConfig, inference: InferenceRequest) -> RelayPlan {
        guard deployment.id != self.deployment else { return self }
        return RelayPlan(inference: inference, deployment: deployment, provider: provider, identity: identity)
    }
}
