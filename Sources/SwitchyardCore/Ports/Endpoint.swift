/// The inference endpoints the gateway relays.
public enum Endpoint: String, Sendable, Hashable, CaseIterable {
    case chatCompletions = "chat"
    case completions = "completions"
    case embeddings = "embeddings"

    /// Path below the provider's base URL.
    public var path: String {
        switch self {
        case .chatCompletions: "/chat/completions"
        case .completions: "/completions"
        case .embeddings: "/embeddings"
        }
    }

    public var canStream: Bool { self != .embeddings }

    /// `object` of a whole response and of a stream chunk.
    public var responseObject: String {
        switch self {
        case .chatCompletions: "chat.completion"
        case .completions: "text_completion"
        case .embeddings: "list"
        }
    }

    public var chunkObject: String {
        switch self {
        case .chatCompletions: "chat.completion.chunk"
        case .completions, .embeddings: "text_completion"
        }
    }

    /// Prefix of the response ids the gateway hands out.
    public var idPrefix: String {
        switch self {
        case .chatCompletions: "chatcmpl-"
        case .completions: "cmpl-"
        case .embeddings: "emb-"
        }
    }
}
