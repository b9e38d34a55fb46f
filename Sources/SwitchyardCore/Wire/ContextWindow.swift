/// The context-window check at admission, as OpenAI makes it: a prompt the model cannot hold is a
/// 400 `context_length_exceeded` before anything is held or sent (engines answer such requests with
/// a 400 at best, and llama.cpp's streaming with a 200 that never sends an event), and so is a
/// `max_tokens` beyond what the context leaves after the prompt — or, where the model says
/// `max_tokens_overflow: clamp`, that `max_tokens` is lowered to what remains.
///
/// The prompt is measured with `TokenEstimate` (four bytes a token): it errs low for most text, so a
/// prompt refused here is over the window by any tokenizer's count, and one that slips through is
/// refused by the upstream, whose error is passed on.
public enum ContextWindow {
    public static func admit(
        _ request: inout InferenceRequest, model: ModelConfig, promptEstimate: Int
    ) throws(GatewayError) {
        guard let context = model.context else { return }
        let where_ = request.endpoint.promptParameter
        guard promptEstimate <= context else {
            throw exceeded(
                "This model's maximum context length is \(context) tokens. However, your \(where_) resulted in "
                    + "\(promptEstimate) tokens. Please reduce the length of the \(where_).",
                param: where_)
        }
        guard request.endpoint.producesCompletion else { return }
        let field = request.body["max_completion_tokens"]?.intValue != nil ? "max_completion_tokens" : "max_tokens"
        guard let asked = request.body[field]?.intValue else { return }
        let room = context - promptEstimate
        guard asked > room else { return }
        switch model.maxTokensOverflow {
        case .clamp where room >= 1:
            request.body[field] = .int(room)
        case .clamp, .reject:
            throw exceeded(
                "This model's maximum context length is \(context) tokens. However, you requested "
                    + "\(promptEstimate + asked) tokens (\(promptEstimate) in the \(where_), \(asked) in the completion). "
                    + "Please reduce the length of the \(where_) or completion.",
                param: field)
        }
    }

    static func exceeded(_ message: String, param: String) -> GatewayError {
        GatewayError(
            status: 400, message: message, type: "invalid_request_error", param: param, code: "context_length_exceeded")
    }
}

extension Endpoint {
    /// The request field that holds the prompt, as errors name it.
    public var promptParameter: String {
        switch prompt {
        case .messages: "messages"
        case .field(let name): name
        }
    }
}
