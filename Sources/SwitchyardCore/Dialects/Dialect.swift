/// The API a caller speaks. The gateway relays chat completions internally; a caller that speaks
/// another API has its request translated to chat completions on the way in and every answer,
/// stream event, stop and error translated back on the way out, unless the deployment's upstream
/// speaks the caller's API itself, when the request and its answer are passed through
/// (`ARCHITECTURE.md`, "Dialects").
public enum Dialect: String, Sendable, CaseIterable {
    /// OpenAI chat completions, text completions and embeddings: relayed as they are.
    case openAI = "openai"
    /// OpenAI Responses (`/v1/responses`).
    case responses
    /// Anthropic Messages (`/v1/messages`).
    case anthropic

    /// The operation an upstream that speaks this dialect natively is sent, when the request is
    /// passed through instead of translated.
    public var nativeEndpoint: Endpoint? {
        switch self {
        case .openAI: nil
        case .responses: .responses
        case .anthropic: .messages
        }
    }
}

extension Endpoint {
    /// `POST /v1/responses` passed through to an upstream that speaks Responses.
    public static let responses = Endpoint(
        name: "responses", path: "/responses", operationName: "chat", output: .message, prompt: .messages,
        canStream: true, responseObject: "response", chunkObject: "response", idPrefix: "resp_"
    ) { _ throws(GatewayError) in }

    /// `POST /v1/messages` passed through to an Anthropic upstream.
    public static let messages = Endpoint(
        name: "messages", path: "/messages", operationName: "chat", output: .message, prompt: .messages,
        canStream: true, responseObject: "message", chunkObject: "message", idPrefix: "msg_"
    ) { _ throws(GatewayError) in }
}

extension Endpoint {
    /// `POST /v1/messages/count_tokens` of an Anthropic upstream.
    public static let messagesCountTokens = Endpoint(
        name: "messages_count_tokens", path: "/messages/count_tokens", operationName: "chat", output: .vectors,
        prompt: .messages, canStream: false, responseObject: "", chunkObject: "", idPrefix: "", stampsID: false
    ) { _ throws(GatewayError) in }
}

/// How an error is written for a caller: OpenAI's `{"error":{…}}` or Anthropic's
/// `{"type":"error","error":{"type","message"}}`.
extension GatewayError {
    /// Anthropic's error `type` for this error's HTTP status.
    public var anthropicType: String {
        switch httpStatus {
        case 400, 422: "invalid_request_error"
        case 401: "authentication_error"
        case 402: "billing_error"
        case 403: "permission_error"
        case 404: "not_found_error"
        case 413: "request_too_large"
        case 429: "rate_limit_error"
        case 503, 529: "overloaded_error"
        case 504: "timeout_error"
        default: "api_error"
        }
    }

    /// `{"type":"error","error":{"type","message"}}`.
    public var anthropicBody: JSONObject {
        ["type": "error", "error": .object(["type": .string(anthropicType), "message": .string(message)])]
    }
}

/// Server-sent events with an `event:` line, as the Responses and Messages APIs frame them.
public enum NamedSSE {
    public static func event(_ name: String, _ object: JSONObject) -> [UInt8] {
        var out: [UInt8] = Array("event: ".utf8)
        out.reserveCapacity(256)
        out.append(contentsOf: name.utf8)
        out.append(contentsOf: "\ndata: ".utf8)
        object.write(into: &out)
        out.append(contentsOf: [0x0A, 0x0A])
        return out
    }

    /// An event whose name is its payload's `type`, as both APIs name them.
    public static func typed(_ object: JSONObject) -> [UInt8] {
        event(object["type"]?.stringValue ?? "message", object)
    }
}

extension JSONValue {
    /// A number's value as a `Double` (for echoing `temperature`), if it is one.
    var isNumber: Bool {
        if case .number = self { return true }
        return false
    }
}

/// Helpers the translations share.
enum Translate {
    /// The text of a content value: a string, or the `text` of every part that has one, joined.
    static func text(of content: JSONValue?, separator: String = "") -> String {
        switch content {
        case .string(let text)?: return text
        case .array(let parts)?:
            return parts.compactMap { part -> String? in
                if let text = part.stringValue { return text }
                return part["text"]?.stringValue
            }.joined(separator: separator)
        default: return ""
        }
    }

    /// `arguments` (a JSON string) as an object; `{}` when it is not one.
    static func object(fromArguments arguments: String) -> JSONValue {
        if case .object(let object)? = try? JSONValue.parse(arguments) { return .object(object) }
        return .object([:])
    }

    /// A data URL's media type and base64 payload.
    static func dataURL(_ url: String) -> (mediaType: String, data: String)? {
        guard url.hasPrefix("data:"), let comma = url.firstIndex(of: ",") else { return nil }
        let header = url[url.index(url.startIndex, offsetBy: 5)..<comma]
        guard header.hasSuffix(";base64") else { return nil }
        return (String(header.dropLast(7)), String(url[url.index(after: comma)...]))
    }
}
