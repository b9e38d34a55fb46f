import Hummingbird
import NIOCore
import SwitchyardCore

/// Where the caller's dialect shows in an exchange: the stream it reads (chat chunks as they are,
/// translated to Responses or Messages events, or passed through from an upstream that speaks its
/// dialect) and the whole answer it gets. Everything else — metering, the lifecycle, settlement —
/// is the same for every dialect.
extension Exchange {
    /// The upstream was sent the caller's own request (it speaks the caller's dialect).
    var passesThrough: Bool { plan.upstream.endpoint != endpoint }

    /// A fresh stream for this attempt's answer, in the caller's dialect.
    func makeStream() -> any AnswerStream {
        if passesThrough { return PassthroughStream(dialect: inference.dialect, identity: plan.identity) }
        switch inference.dialect {
        case .openAI:
            return StreamRelay(identity: plan.identity, endpoint: endpoint, clientWantsUsage: inference.includeUsage)
        case .responses:
            let chat = StreamRelay(identity: plan.identity, endpoint: endpoint, clientWantsUsage: false)
            let answer = ResponsesAnswer(request: inference.original ?? inference.body, identity: plan.identity)
            return TranslatedStream(chat: chat, encoder: .responses(ResponsesStreamEncoder(answer: answer)), clock: clock)
        case .anthropic:
            let chat = StreamRelay(identity: plan.identity, endpoint: endpoint, clientWantsUsage: false)
            let estimate = TokenEstimate.prompt(of: inference.body, endpoint: endpoint)
            return TranslatedStream(
                chat: chat, encoder: .messages(MessagesStreamEncoder(identity: plan.identity, promptEstimate: estimate)),
                clock: clock)
        }
    }

    /// A whole chat completion (stamped) as the caller's dialect has it; `usage` is what is billed.
    func translated(_ chat: JSONObject, usage: Usage) -> JSONObject {
        switch inference.dialect {
        case .openAI:
            return chat
        case .responses:
            return ResponsesAnswer(request: inference.original ?? inference.body, identity: plan.identity)
                .response(fromChat: chat, usage: usage, completedAt: Int(clock.unixSeconds))
        case .anthropic:
            return MessagesAnswer.message(fromChat: chat, identity: plan.identity, usage: usage)
        }
    }

    /// Writes an answer the gateway composed itself (chat chunks synthesised from a whole answer)
    /// as the caller's stream, and its ending.
    func writeComposed(_ chunks: [JSONObject], usage: Usage, into writer: inout any ResponseBodyWriter) async throws {
        var stream = makeStream()
        for chunk in chunks {
            if case .forward(let bytes) = try stream.relay(chunk.serialized()) {
                try await writer.write(ByteBuffer(bytes: bytes))
            }
        }
        try await writer.write(ByteBuffer(bytes: stream.finished(usage: stream.usage ?? usage)))
    }

    /// The usage a stream's ending reports: the upstream's own (with its cache and reasoning
    /// details) when it gave one, else what is billed.
    func endingUsage(_ stream: any AnswerStream, charge: Bool) -> Usage {
        let billed = ticket.billableUsage(charge: charge)
        guard let reported = stream.usage, charge, reported.promptTokens == billed.promptTokens,
            reported.completionTokens == billed.completionTokens
        else { return billed }
        return reported
    }
}
