/// How upstream failures reach the client. Before the first byte they are an HTTP error; once a
/// stream has begun they become its last event.
public enum UpstreamFailure {
    public static func gatewayError(_ error: any Error, provider: String) -> GatewayError {
        switch error {
        case let error as GatewayError: return error
        case let error as UpstreamError:
            switch error {
            case .connectFailed: return .upstreamUnreachable(provider)
            case .timeout(let phase): return .upstreamTimeout(provider, phase.rawValue)
            case .closedEarly: return .upstreamBroken(provider, "the connection closed before the response was complete")
            case .invalidResponse(let detail): return .upstreamBroken(provider, detail)
            case .overloaded: return .upstreamOverloaded(provider)
            }
        default: return .upstreamBroken(provider, "unexpected error")
        }
    }

    /// An upstream's non-2xx answer. 4xx (429 included, with its `retry-after`) passes on with the
    /// upstream's own status and message: the request itself was refused. 401/403 mean the gateway's
    /// credentials for the upstream are wrong, which the caller cannot fix, and 5xx mean the upstream
    /// broke: both become 502.
    public static func fromStatus(_ status: Int, body: [UInt8], headers: [(name: String, value: String)], provider: String)
        -> GatewayError
    {
        let object = (try? JSONValue.parse(body))?["error"]?.objectValue
        let message = object?["message"]?.stringValue
        if (400..<500).contains(status) && status != 401 && status != 403 {
            return GatewayError(
                status: status,
                message: message ?? "The upstream refused the request (HTTP \(status)).",
                type: object?["type"]?.stringValue ?? (status == 429 ? "rate_limit_exceeded" : "invalid_request_error"),
                param: object?["param"]?.stringValue,
                code: object?["code"]?.stringValue ?? object?["code"]?.intValue.map(String.init),
                headers: headers.filter { $0.name == "retry-after" }
            )
        }
        if status == 401 || status == 403 {
            return .upstreamBroken(provider, "it rejected the gateway's credentials (HTTP \(status))")
        }
        return .upstreamBroken(provider, "HTTP \(status)" + (message.map { ": \($0)" } ?? ""))
    }
}
