/// One streamed answer on its way to the client, in the client's dialect: each upstream event in,
/// the bytes to write out, and what settlement needs (usage, output, the finish reason). The relay
/// (`Exchange.pipe`) drives it without knowing the dialect; how the stream ends — finished, stopped
/// by its caller, failed upstream — is written by the stream too.
public protocol AnswerStream: Sendable {
    mutating func relay(_ payload: [UInt8]) throws(UpstreamError) -> StreamRelay.Action
    var usage: Usage? { get }
    var finishReason: String? { get }
    /// Events that carried generated output, and its bytes.
    var outputChunks: Int { get }
    var outputBytes: Int { get }
    /// Whether to keep the generated text, for counting it with the engine's tokenizer.
    var collectsText: Bool { get set }
    var relayedText: String { get }
    /// The end of a stream that finished (`usage`: what is billed).
    mutating func finished(usage: Usage) -> [UInt8]
    /// The end of a stream its caller stopped.
    mutating func stopped(usage: Usage) -> [UInt8]
    /// The end of a stream whose upstream failed, `error` in OpenAI's shape.
    mutating func failed(_ error: JSONObject, usage: Usage) -> [UInt8]
}

extension StreamRelay: AnswerStream {
    public func finished(usage: Usage) -> [UInt8] { SSE.done }

    public func stopped(usage: Usage) -> [UInt8] {
        var out: [UInt8] = []
        for chunk in cancellationChunks(usage: usage) { out.append(contentsOf: SSE.event(chunk)) }
        out.append(contentsOf: SSE.done)
        return out
    }

    public func failed(_ error: JSONObject, usage: Usage) -> [UInt8] { SSE.errorEvent(error) }
}

/// A chat completions stream written as Responses or Messages events.
public struct TranslatedStream: AnswerStream {
    public enum Encoder: Sendable {
        case responses(ResponsesStreamEncoder)
        case messages(MessagesStreamEncoder)
    }

    private var chat: StreamRelay
    private var encoder: Encoder
    private let clock: any GatewayClock

    public init(chat: StreamRelay, encoder: Encoder, clock: any GatewayClock) {
        self.chat = chat
        self.encoder = encoder
        self.clock = clock
    }

    public var usage: Usage? { chat.usage }
    public var finishReason: String? { chat.finishReason }
    public var outputChunks: Int { chat.outputChunks }
    public var outputBytes: Int { chat.outputBytes }
    public var relayedText: String { chat.relayedText }
    public var collectsText: Bool {
        get { chat.collectsText }
        set { chat.collectsText = newValue }
    }

    public mutating func relay(_ payload: [UInt8]) throws(UpstreamError) -> StreamRelay.Action {
        switch try chat.relayChunk(payload) {
        case .drop: return .drop
        case .upstreamError(let error): return .upstreamError(error)
        case .chunk(let chunk):
            let bytes: [UInt8]
            switch encoder {
            case .responses(var inner):
                bytes = inner.encode(chunk)
                encoder = .responses(inner)
            case .messages(var inner):
                bytes = inner.encode(chunk)
                encoder = .messages(inner)
            }
            return bytes.isEmpty ? .drop : .forward(bytes)
        }
    }

    public mutating func finished(usage: Usage) -> [UInt8] {
        switch encoder {
        case .responses(var inner):
            defer { encoder = .responses(inner) }
            return inner.finish(usage: usage, completedAt: Int(clock.unixSeconds))
        case .messages(var inner):
            defer { encoder = .messages(inner) }
            return inner.finish(usage: usage)
        }
    }

    public mutating func stopped(usage: Usage) -> [UInt8] {
        switch encoder {
        case .responses(var inner):
            defer { encoder = .responses(inner) }
            return inner.stopped(usage: usage)
        case .messages(var inner):
            defer { encoder = .messages(inner) }
            return inner.stopped(usage: usage)
        }
    }

    public mutating func failed(_ error: JSONObject, usage: Usage) -> [UInt8] {
        switch encoder {
        case .responses(var inner):
            defer { encoder = .responses(inner) }
            return inner.failed(error, usage: usage)
        case .messages(var inner):
            defer { encoder = .messages(inner) }
            return inner.failed(error)
        }
    }
}
