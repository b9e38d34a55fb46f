/// Every refusal or failure the gateway reports, in OpenAI's error shape
/// (`{"error":{"message","type","param","code"}}`) with the HTTP status it goes out with.
public struct GatewayError: Error, Sendable, Equatable {
    public var httpStatus: Int
    public var message: String
    public var type: String
    public var param: String?
    public var code: String?
    /// Extra response headers, e.g. `retry-after` passed on from an upstream 429.
    public var headers: [(name: String, value: String)]

    public init(
        status: Int,
        message: String,
        type: String,
        param: String? = nil,
        code: String? = nil,
        headers: [(name: String, value: String)] = []
    ) {
        self.httpStatus = status
        self.message = message
        self.type = type
        self.param = param
        self.code = code
        self.headers = headers
    }

    public static func == (lhs: GatewayError, rhs: GatewayError) -> Bool {
        lhs.httpStatus == rhs.httpStatus && lhs.message == rhs.message && lhs.type == rhs.type && lhs.param == rhs.param
            && lhs.code == rhs.code && lhs.headers.elementsEqual(rhs.headers, by: { $0 == $1 })
    }

    /// The `error` object alone, as it appears in a response body or an SSE error event.
    public var errorObject: JSONObject {
        JSONObject([
            "message": .string(message),
            "type": .string(type),
            "param": param.map(JSONValue.string) ?? .null,
            "code": code.map(JSONValue.string) ?? .null,
        ])
    }

    /// `{"error":{...}}` as bytes.
    public var body: [UInt8] {
        JSONObject(["error": .object(errorObject)]).serialized()
    }
}

extension GatewayError {
    public static func invalidJSON(_ error: JSONParseError) -> GatewayError {
        GatewayError(
            status: 400,
            message: "We could not parse the JSON body of your request (\(error)). The API expects a JSON object.",
            type: "invalid_request_error"
        )
    }

    public static func missingParameter(_ name: String) -> GatewayError {
        GatewayError(
            status: 400,
            message: "Missing required parameter: '\(name)'.",
            type: "invalid_request_error",
            param: name,
            code: "missing_required_parameter"
        )
    }

    public static func invalidType(_ name: String, expected: String, got value: JSONValue) -> GatewayError {
        GatewayError(
            status: 400,
            message: "Invalid type for '\(name)': expected \(expected), but got \(value.typeName) instead.",
            type: "invalid_request_error",
            param: name,
            code: "invalid_type"
        )
    }

    public static func invalidValue(_ name: String, _ message: String) -> GatewayError {
        GatewayError(status: 400, message: message, type: "invalid_request_error", param: name, code: "invalid_value")
    }

    public static func modelNotFound(_ model: String) -> GatewayError {
        GatewayError(
            status: 404,
            message: "The model '\(model)' does not exist or you do not have access to it.",
            type: "invalid_request_error",
            param: "model",
            code: "model_not_found"
        )
    }

    public static func notFound(_ path: String) -> GatewayError {
        GatewayError(
            status: 404,
            message: "Unknown request URL: \(path). Please check the URL for typos.",
            type: "invalid_request_error",
            code: "unknown_url"
        )
    }

    public static func methodNotAllowed(_ method: String, _ path: String) -> GatewayError {
        GatewayError(
            status: 405,
            message: "Method \(method) is not allowed on \(path).",
            type: "invalid_request_error",
            code: "method_not_allowed"
        )
    }

    public static func bodyTooLarge(limit: Int) -> GatewayError {
        GatewayError(
            status: 413,
            message: "The request body is larger than this gateway accepts (\(limit) bytes).",
            type: "invalid_request_error",
            code: "request_too_large"
        )
    }

    public static func unsupported(_ message: String, param: String? = nil) -> GatewayError {
        GatewayError(status: 400, message: message, type: "invalid_request_error", param: param, code: "unsupported")
    }

    public static func upstreamUnreachable(_ provider: String) -> GatewayError {
        GatewayError(
            status: 502,
            message: "The upstream serving this model (\(provider)) could not be reached. Please retry later.",
            type: "api_error",
            code: "upstream_unreachable"
        )
    }

    public static func upstreamTimeout(_ provider: String, _ phase: String) -> GatewayError {
        GatewayError(
            status: 504,
            message: "The upstream serving this model (\(provider)) timed out (\(phase)).",
            type: "api_error",
            code: "upstream_timeout"
        )
    }

    public static func upstreamBroken(_ provider: String, _ detail: String) -> GatewayError {
        GatewayError(
            status: 502,
            message: "The upstream serving this model (\(provider)) failed: \(detail).",
            type: "api_error",
            code: "upstream_error"
        )
    }

    /// Every connection to the upstream is busy and its wait queue (`max_queue`) is full.
    public static func upstreamOverloaded(_ provider: String) -> GatewayError {
        GatewayError(
            status: 503,
            message: "The upstream serving this model (\(provider)) is at capacity. Please retry shortly.",
            type: "server_error",
            code: "upstream_overloaded",
            headers: [("retry-after", "1")]
        )
    }

    /// A managed engine could not serve: it did not start in time, exited while starting, or was stopped.
    public static func engineUnavailable(_ provider: String, _ reason: String) -> GatewayError {
        GatewayError(
            status: 503,
            message: "The engine serving this model (\(provider)) is not available: \(reason). Please retry shortly.",
            type: "server_error",
            code: "engine_unavailable",
            headers: [("retry-after", "5")]
        )
    }

    /// Every deployment of the model (and of its fallbacks) is cooling down after repeated failures.
    public static func noDeploymentAvailable(_ model: String, retryAfterSeconds: Int) -> GatewayError {
        GatewayError(
            status: 503,
            message: "The model '\(model)' is temporarily unavailable: its upstreams failed repeatedly. "
                + "Please retry in \(retryAfterSeconds)s.",
            type: "server_error",
            code: "model_unavailable",
            headers: [("retry-after", "\(retryAfterSeconds)")]
        )
    }

    /// The same error with more response headers.
    public func adding(headers more: [(name: String, value: String)]) -> GatewayError {
        var copy = self
        copy.headers += more
        return copy
    }

    /// The last event of a stream the gateway had to cut when its drain time ran out.
    public static let cutByShutdown = GatewayError(
        status: 503,
        message: "The gateway shut down before this answer was complete; only the part you received is billed.",
        type: "api_error", code: "shutting_down")

    /// The database that replicas share cannot be reached for something only it can answer (a
    /// shared limit, a request running on another replica): refused, never guessed from local state.
    public static func databaseUnavailable(_ what: String) -> GatewayError {
        GatewayError(
            status: 503, message: "The gateway cannot reach its database to \(what). Please try again shortly.",
            type: "server_error", code: "database_unavailable", headers: [("retry-after", "1")])
    }

    public static let internalError = GatewayError(
        status: 500,
        message: "The gateway had an internal error while handling your request.",
        type: "api_error",
        code: "internal_error"
    )
}
