import Hummingbird
import SwitchyardCore

/// The seed service's way of calling: `/llm_api/{openid}/{userid}/{AI_system}/v1/…`, where `openid`
/// is a key of the account, `userid` the end user and `AI_system` the model (an empty segment means
/// the body's `model`); and stopping: `/llm_api/suspend_current_generate?openid=KEY&userid=USER`, plus
/// `POST /v1/chat/completions/{id}/cancel` by the response id.
struct SeedRoutes: Sendable {
    let relay: Relay
    let models: ModelsController
    /// Stops reach the request on whichever replica runs it.
    let stops: Stops
    let authenticator: Authenticator

    func addRoutes(to router: Router<GatewayRequestContext>) {
        for method in [HTTPRequest.Method.get, .post] {
            router.on("llm_api/suspend_current_generate", method: method) { request, _ in
                try await suspend(request)
            }
        }
        // The path is parsed by hand: an empty `{AI_system}` segment (`…/{userid}//v1/…`) is
        // meaningful here, and a router collapses empty segments.
        router.post("llm_api/**") { request, context in
            let call = try SeedPath(request.uri.path)
            let style = Relay.CallStyle(pathKey: call.openid, pathUser: call.userid, pathModel: call.model)
            switch call.rest {
            case ["responses"]:
                return try await relay.handle(.chatCompletions, dialect: .responses, request: request, context: context, style: style)
            case ["messages"]:
                return try await AgentRoutes.anthropicErrors {
                    try await relay.handle(.chatCompletions, dialect: .anthropic, request: request, context: context, style: style)
                }
            default:
                guard let endpoint = call.endpoint else { throw GatewayError.unknownURL(request) }
                return try await relay.handle(endpoint, request: request, context: context, style: style)
            }
        }
        router.get("llm_api/**") { request, _ in
            let call = try SeedPath(request.uri.path)
            switch call.rest {
            case ["models"]: return try await models.list(keys: [call.openid, request.bearerToken])
            case let rest where rest.count == 2 && rest[0] == "models":
                return try await models.one(rest[1], keys: [call.openid, request.bearerToken])
            default: throw GatewayError.unknownURL(request)
            }
        }
        for endpoint in ["chat/completions", "completions"] {
            router.post("v1/\(endpoint)/{id}/cancel") { request, context in
                let caller = try await authenticator.authenticate(request.bearerToken)
                let id = try context.parameters.require("id")
                guard try await stops.stop(id: id, accountID: caller.account.id) != nil else {
                    throw GatewayError(
                        status: 404, message: "No request with id '\(id)' is running.", type: "invalid_request_error",
                        param: "id", code: "not_found")
                }
                return Relay.json(["id": .string(id), "object": "request.cancellation", "cancelled": true])
            }
        }
    }

    /// Stops every generation of the key's account for that end user; answers how many it stopped.
    private func suspend(_ request: Request) async throws -> Response {
        let query = request.uri.queryParameters
        let caller = try await authenticator.authenticate(anyOf: [query.get("openid"), request.bearerToken])
        guard let userid = query.get("userid") else { throw GatewayError.missingParameter("userid") }
        let stopped = try await stops.stop(accountID: caller.account.id, endUser: userid)
        return Relay.json([
            "object": "suspend_current_generate", "openid": .string(caller.account.id), "userid": .string(userid),
            "stopped": .int(stopped),
        ])
    }
}

/// `/llm_api/{openid}/{userid}/{AI_system}/v1/REST…` split into its parts, empty segments kept.
struct SeedPath {
    var openid: String
    var userid: String
    var model: String
    var rest: [String]

    init(_ path: String) throws {
        let segments = path.split(separator: "/", omittingEmptySubsequences: false).map { String($0).removingPercentEncoding ?? String($0) }
        // "", "llm_api", openid, userid, AI_system, "v1", rest…
        guard segments.count >= 7, segments[1] == "llm_api", segments[5] == "v1", !segments[2].isEmpty else {
            throw GatewayError(
                status: 404,
                message: "Expected /llm_api/{openid}/{userid}/{AI_system}/v1/chat/completions (AI_system may be empty).",
                type: "invalid_request_error", code: "unknown_url")
        }
        openid = segments[2]
        userid = segments[3]
        model = segments[4]
        rest = Array(segments[6...])
    }

    var endpoint: Endpoint? {
        switch rest {
        case ["chat", "completions"]: .chatCompletions
        case ["completions"]: .completions
        case ["embeddings"]: .embeddings
        case ["images", "generations"]: .imageGenerations
        case ["images", "edits"]: .imageEdits
        case ["images", "variations"]: .imageVariations
        case ["audio", "speech"]: .speech
        case ["audio", "transcriptions"]: .transcriptions
        case ["audio", "translations"]: .translations
        default: nil
        }
    }
}
