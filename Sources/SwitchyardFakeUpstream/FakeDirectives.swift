import Foundation

/// The per-request `"fake": {...}` vendor extension that scripts how the upstream misbehaves.
/// `"models": {"upstream-id": {...}}` inside it overrides the directives for requests whose `model`
/// is that id, so one request body can script different behaviour per deployment (a gateway that
/// retries elsewhere sends the same body with another `model`).
///
/// A request that cannot carry a `"fake"` field of its own (one the gateway translated from the
/// Responses or Messages API, which keeps only what it knows) scripts the fake with a system or
/// user message whose text is `#fake {...}`.
struct FakeDirectives: Sendable {
    /// The `{...}` of the first message whose text starts with `#fake `.
    static func inMessages(_ messages: Any?) -> [String: Any]? {
        for message in messages as? [[String: Any]] ?? [] {
            guard let text = message["content"] as? String, text.hasPrefix("#fake ") else { continue }
            let json = Data(text.dropFirst(6).utf8)
            if let object = (try? JSONSerialization.jsonObject(with: json)) as? [String: Any] { return object }
        }
        return nil
    }

    var tokens: Int
    var delayMs: Int
    var firstByteDelayMs = 0
    var status: Int?
    var message: String?
    var errorType: String?
    /// Already rendered as a JSON literal, because OpenAI codes are strings but may be numbers.
    var codeJSON = "null"
    var retryAfter: String?
    var dieAfter: Int?
    /// Exit the whole process (when the host allows it: `FakeUpstreamDefaults.crash`) after this many
    /// streamed content chunks; 0, or a whole answer, exits before answering. A crashed engine.
    var crashAfter: Int?
    var stallAfter: Int?
    /// Close the connection without answering at all, streamed or not.
    var hangUp = false
    var toolCall = false
    var noUsage = false
    /// A stream that ends cleanly with no event and no `[DONE]`, as llama.cpp answers a streamed
    /// prompt over its context.
    var emptyStream = false
    var finishReason: String?

    init(_ fake: [String: Any]?, model: String?, defaults: FakeUpstreamDefaults) {
        tokens = defaults.tokens
        delayMs = defaults.delayMs
        guard var object = fake else { return }
        if let model, let specific = (object["models"] as? [String: Any])?[model] as? [String: Any] {
            object.merge(specific) { $1 }
        }
        tokens = max(JSONValues.int(object["tokens"]) ?? tokens, 0)
        delayMs = max(JSONValues.int(object["delay_ms"]) ?? delayMs, 0)
        firstByteDelayMs = max(JSONValues.int(object["first_byte_delay_ms"]) ?? 0, 0)
        status = JSONValues.int(object["status"])
        message = object["message"] as? String
        errorType = object["error_type"] as? String
        if let code = object["code"] as? String {
            codeJSON = JSONText.quoted(code)
        } else if let code = JSONValues.int(object["code"]) {
            codeJSON = String(code)
        }
        retryAfter = object["retry_after"] as? String
        dieAfter = JSONValues.int(object["die_after"]).map { max($0, 0) }
        crashAfter = JSONValues.int(object["crash_after"]).map { max($0, 0) }
        stallAfter = JSONValues.int(object["stall_after"]).map { max($0, 0) }
        hangUp = JSONValues.bool(object["hang_up"]) ?? false
        toolCall = JSONValues.bool(object["tool_call"]) ?? false
        noUsage = JSONValues.bool(object["no_usage"]) ?? false
        emptyStream = JSONValues.bool(object["empty_stream"]) ?? false
        finishReason = object["finish_reason"] as? String
    }
}
