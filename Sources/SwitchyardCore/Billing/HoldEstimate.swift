/// The worst case a request can cost, reserved from the balance before it is sent.
public enum HoldEstimate {
    /// An upper bound of the prompt's tokens: its UTF-8 bytes (a byte-level BPE token covers at least
    /// one byte) plus a little framing per message, never more than the context window.
    public static func promptTokens(_ request: InferenceRequest, context: Int?) -> Int {
        var bytes = 0
        switch request.endpoint.prompt {
        case .messages:
            for message in request.body["messages"]?.arrayValue ?? [] { bytes += 8 + textBytes(message["content"]) }
        case .field(let name): bytes = textBytes(request.body[name])
        }
        let bound = max(1, bytes)
        return context.map { min($0, bound) } ?? bound
    }

    /// The most completion tokens the request can produce: `max_completion_tokens` / `max_tokens`,
    /// else the model's output cap, else what the context window leaves; times `n`. `promptEstimate` is
    /// `TokenEstimate.prompt` of the request, computed once by the caller.
    public static func completionTokens(_ request: InferenceRequest, model: ModelConfig, promptEstimate: Int) -> Int {
        // Media answers are metered in media units; their tokens, when an upstream reports them
        // (image models priced per token), are bounded like a completion's.
        guard request.endpoint.producesCompletion || request.endpoint.output == .media else { return 0 }
        let asked = request.body["max_completion_tokens"]?.intValue ?? request.body["max_tokens"]?.intValue
        let room = model.context.map { max(1, $0 - promptEstimate) }
        let perChoice = [asked, model.maxOutputTokens, room].compactMap { $0 }.min() ?? 4096
        let choices = max(1, request.body["n"]?.intValue ?? 1)
        return perChoice * choices
    }

    public static func hold(
        for request: InferenceRequest, model: ModelConfig, multiplierPPM: Int64, promptEstimate: Int
    ) -> Money {
        var media = request.mediaEstimate ?? .none
        if case .perAudioSecond = model.price, media.audioMillis == 0 {
            // Audio still to be produced (speech) is unknown until it is: the model's `max_seconds`
            // bounds it (and what is billed). Uploaded audio (transcription) is measured, exactly.
            media.audioMillis = Int64(model.maxSeconds) * 1000
        }
        return model.price.cost(
            promptTokens: promptTokens(request, context: model.context),
            completionTokens: completionTokens(request, model: model, promptEstimate: promptEstimate),
            generationMillis: Int64(model.maxSeconds) * 1000,
            multiplierPPM: multiplierPPM, media: media
        )
    }

    private static func textBytes(_ value: JSONValue?) -> Int {
        switch value {
        case .string(let text)?: return text.utf8.count
        case .array(let items)?: return items.reduce(0) { $0 + textBytes($1) + 1 }
        case .object(let object)?: return object.members.reduce(0) { $0 + textBytes($1.value) }
        case .number?: return 1
        default: return 0
        }
    }
}
