/// An answer from an upstream that speaks the caller's own dialect (Responses to a `responses:
/// native` provider, Messages to an `anthropic` one), passed through: every event is forwarded as
/// it came except for the gateway's id and the public model name, and read only for what settlement
/// needs. A stop or an upstream failure is ended in the same dialect, continuing the stream's own
/// numbering.
public struct PassthroughStream: AnswerStream {
    public let dialect: Dialect
    public let identity: ResponseIdentity
    public private(set) var usage: Usage?
    public private(set) var finishReason: String?
    public private(set) var outputChunks = 0
    public private(set) var outputBytes = 0
    public var collectsText = false
    public private(set) var relayedText = ""
    /// Responses: the last `sequence_number`, and the response as `response.created` described it.
    private var sequence = -1
    private var response: JSONObject?
    /// Messages: the content block that is open.
    private var openBlock: Int?
    /// The upstream's own failure event, forwarded as the stream's last.
    private var failure: [UInt8]?

    public init(dialect: Dialect, identity: ResponseIdentity) {
        self.dialect = dialect
        self.identity = identity
    }

    public mutating func relay(_ payload: [UInt8]) throws(UpstreamError) -> StreamRelay.Action {
        guard case .object(var event) = try? JSONValue.parse(payload) else {
            throw .invalidResponse("a stream event is not a JSON object")
        }
        let type = event["type"]?.stringValue ?? ""
        if let number = event["sequence_number"]?.intValue { sequence = max(sequence, number) }
        var edited = false
        switch (dialect, type) {
        case (.anthropic, "message_start"):
            if var message = event["message"]?.objectValue {
                message["id"] = .string(identity.id)
                message["model"] = .string(identity.model)
                usage = AnthropicUpstream.usage(message["usage"])
                event["message"] = .object(message)
                edited = true
            }
        case (.anthropic, "content_block_start"):
            openBlock = event["index"]?.intValue
        case (.anthropic, "content_block_stop"):
            openBlock = nil
        case (.anthropic, "content_block_delta"):
            let delta = event["delta"]
            count(delta?["text"]?.stringValue ?? delta?["partial_json"]?.stringValue ?? delta?["thinking"]?.stringValue)
        case (.anthropic, "message_delta"):
            if let reason = event["delta"]?["stop_reason"]?.stringValue {
                finishReason = AnthropicUpstream.finishReason(reason)
            }
            if let reported = event["usage"] {
                usage = AnthropicUpstream.updated(usage ?? Usage(promptTokens: 0, completionTokens: 0), by: reported)
            }
        case (.anthropic, "error"):
            failure = NamedSSE.event("error", event)
            return .upstreamError(event["error"]?.objectValue ?? ["message": "The upstream failed."])
        case (.responses, "response.created"), (.responses, "response.in_progress"), (.responses, "response.completed"),
            (.responses, "response.incomplete"), (.responses, "response.failed"), (.responses, "response.queued"):
            if var object = event["response"]?.objectValue {
                object["id"] = .string(identity.id)
                object["model"] = .string(identity.model)
                if response == nil { response = object }
                if type == "response.completed" || type == "response.incomplete" {
                    usage = Self.responsesUsage(object["usage"]) ?? usage
                    finishReason = Self.finishReason(ofResponse: object)
                }
                event["response"] = .object(object)
                edited = true
                if type == "response.failed" {
                    failure = NamedSSE.event(type, event)
                    return .upstreamError(object["error"]?.objectValue ?? ["message": "The upstream failed."])
                }
            }
        case (.responses, "error"):
            failure = NamedSSE.event(type, event)
            return .upstreamError(["message": event["message"] ?? "The upstream failed.", "code": event["code"] ?? nil])
        case (.responses, _) where type.hasSuffix(".delta"):
            count(event["delta"]?.stringValue)
        default:
            break
        }
        guard edited else {
            // Forwarded byte for byte, framed with its type as the event name.
            var out: [UInt8] = Array("event: ".utf8)
            out.append(contentsOf: type.utf8)
            out.append(contentsOf: "\ndata: ".utf8)
            out.append(contentsOf: payload)
            out.append(contentsOf: [0x0A, 0x0A])
            return .forward(out)
        }
        return .forward(NamedSSE.event(type, event))
    }

    private mutating func count(_ text: String?) {
        guard let text, !text.isEmpty else { return }
        outputChunks += 1
        outputBytes += text.utf8.count
        if collectsText { relayedText += text }
    }

    /// The upstream sent its own last event; nothing is added.
    public func finished(usage: Usage) -> [UInt8] { [] }

    public mutating func stopped(usage: Usage) -> [UInt8] {
        var out: [UInt8] = []
        switch dialect {
        case .anthropic:
            if let index = openBlock {
                out += NamedSSE.event("content_block_stop", ["type": "content_block_stop", "index": .int(index)])
            }
            out += NamedSSE.event(
                "message_delta",
                [
                    "type": "message_delta", "delta": .object(["stop_reason": "end_turn", "stop_sequence": nil]),
                    "usage": .object(MessagesAnswer.usage(usage)), "end_reason": "cancelled",
                ])
            out += NamedSSE.event("message_stop", ["type": "message_stop"])
        case .responses, .openAI:
            var object = response ?? ["id": .string(identity.id), "object": "response", "model": .string(identity.model)]
            object["status"] = "cancelled"
            object["usage"] = ResponsesAnswer.usage(usage)
            object["end_reason"] = "cancelled"
            sequence += 1
            out += NamedSSE.event(
                "response.incomplete",
                ["type": "response.incomplete", "response": .object(object), "sequence_number": .int(sequence)])
        }
        return out
    }

    public mutating func failed(_ error: JSONObject, usage: Usage) -> [UInt8] {
        if let failure { return failure }
        switch dialect {
        case .anthropic:
            return NamedSSE.event("error", MessagesAnswer.errorBody(error))
        case .responses, .openAI:
            var object = response ?? ["id": .string(identity.id), "object": "response", "model": .string(identity.model)]
            object["status"] = "failed"
            object["error"] = .object(["code": "server_error", "message": error["message"] ?? "The upstream failed."])
            object["usage"] = ResponsesAnswer.usage(usage)
            sequence += 1
            return NamedSSE.event(
                "response.failed", ["type": "response.failed", "response": .object(object), "sequence_number": .int(sequence)])
        }
    }

    /// Responses' `usage` as chat's.
    public static func responsesUsage(_ value: JSONValue?) -> Usage? {
        guard let value, let input = value["input_tokens"]?.intValue else { return nil }
        return Usage(
            promptTokens: input, completionTokens: value["output_tokens"]?.intValue ?? 0,
            cachedTokens: value["input_tokens_details"]?["cached_tokens"]?.intValue ?? 0,
            reasoningTokens: value["output_tokens_details"]?["reasoning_tokens"]?.intValue ?? 0)
    }

    static func finishReason(ofResponse object: JSONObject) -> String {
        switch (object["status"]?.stringValue, object["incomplete_details"]?["reason"]?.stringValue) {
        case ("incomplete", "max_output_tokens"): "length"
        case ("incomplete", "content_filter"): "content_filter"
        default: "stop"
        }
    }
}

/// A whole answer from an upstream that speaks the caller's dialect: what it reports, and the answer
/// stamped with the gateway's id and the public model name.
public enum PassthroughAnswer {
    public static func meter(_ object: JSONObject, dialect: Dialect) -> (usage: Usage?, outputBytes: Int, finishReason: String?) {
        switch dialect {
        case .anthropic:
            var bytes = 0
            for block in object["content"]?.arrayValue ?? [] {
                bytes += block["text"]?.stringValue?.utf8.count ?? block["thinking"]?.stringValue?.utf8.count ?? 0
                if let input = block["input"] { bytes += input.serialized().count }
            }
            return (
                AnthropicUpstream.usage(object["usage"]), bytes,
                AnthropicUpstream.finishReason(object["stop_reason"]?.stringValue)
            )
        case .responses, .openAI:
            var bytes = 0
            for item in object["output"]?.arrayValue ?? [] {
                bytes += item["arguments"]?.stringValue?.utf8.count ?? 0
                for part in item["content"]?.arrayValue ?? [] { bytes += part["text"]?.stringValue?.utf8.count ?? 0 }
            }
            return (PassthroughStream.responsesUsage(object["usage"]), bytes, PassthroughStream.finishReason(ofResponse: object))
        }
    }

    public static func stamped(_ object: JSONObject, identity: ResponseIdentity) -> JSONObject {
        var copy = object
        copy["id"] = .string(identity.id)
        copy["model"] = .string(identity.model)
        return copy
    }
}
