/// Everything one chat or text completion will contain, settled before the first byte is
/// written so the streaming body (a `@Sendable` closure) needs nothing from the request.
struct CompletionPlan: Sendable {
    enum Kind: Sendable {
        case chat
        case text
    }

    static let toolCallID = "call_fake1"
    static let toolArguments = #"{"x":1,"y":"two"}"#
    /// Streamed in pieces, as OpenAI does, so clients have to reassemble the arguments.
    static let toolArgumentPieces = [#"{"x":"#, #"1,"y":"#, #""two"}"#]
    static let toolCallCompletionTokens = 7

    let kind: Kind
    let id: String
    let created: Int
    let model: String
    let tokens: Int
    let promptTokens: Int
    /// Function name when the response is a scripted tool call instead of text.
    let toolName: String?
    /// Whether usage is reported at all (`fake.no_usage` turns it off).
    let reportsUsage: Bool
    /// Whether a stream ends with a usage chunk (`stream_options.include_usage`).
    let streamsUsage: Bool
    let finishReason: String
    let delayMs: Int
    let dieAfter: Int?
    let crashAfter: Int?
    let stallAfter: Int?
    let emptyStream: Bool

    init(kind: Kind, sequence: Int, body: [String: Any], directives: FakeDirectives, created: Int) {
        self.kind = kind
        self.id = (kind == .chat ? "chatcmpl-fake" : "cmpl-fake") + String(sequence)
        self.created = created
        self.model = body["model"] as? String ?? "fake-model"
        self.tokens = directives.tokens
        switch kind {
        case .chat:
            promptTokens = JSONValues.chatPromptTokens(body["messages"])
            toolName = directives.toolCall ? JSONValues.firstToolName(body["tools"]) : nil
        case .text:
            promptTokens = max(JSONValues.inputs(body["prompt"]).reduce(0) { $0 + $1.tokens }, 1)
            toolName = nil
        }
        reportsUsage = !directives.noUsage
        let options = body["stream_options"] as? [String: Any]
        streamsUsage = reportsUsage && (JSONValues.bool(options?["include_usage"]) ?? false)
        finishReason = directives.finishReason ?? (toolName == nil ? "stop" : "tool_calls")
        delayMs = directives.delayMs
        dieAfter = directives.dieAfter
        crashAfter = directives.crashAfter
        stallAfter = directives.stallAfter
        emptyStream = directives.emptyStream
    }

    var completionTokens: Int {
        toolName == nil ? tokens : Self.toolCallCompletionTokens
    }

    var usageJSON: String {
        JSONText.usage(prompt: promptTokens, completion: completionTokens)
    }

    /// The streamed pieces in order; concatenated they equal the non-streamed text.
    func piece(_ index: Int) -> String {
        index == 0 ? "w1" : " w\(index + 1)"
    }

    var text: String {
        var text = ""
        for index in 0..<tokens { text += piece(index) }
        return text
    }

    /// Number of streamed chunks that carry content (text pieces or tool-call argument pieces).
    var contentChunkCount: Int {
        toolName == nil ? tokens : Self.toolArgumentPieces.count
    }
}
