/// Passes an upstream's stream chunks on to a streaming client: stamps the gateway's id and the
/// public model name, drops the usage the gateway asked for on its own account when the client did
/// not, and remembers what settlement needs (usage, whether the stream finished).
public struct StreamRelay: Sendable {
    public enum Action: Sendable, Equatable {
        /// Write this SSE event (already framed) to the client.
        case forward([UInt8])
        /// Nothing for the client in this chunk.
        case drop
        /// The upstream sent an error event mid-stream.
        case upstreamError(JSONObject)
    }

    public let identity: ResponseIdentity
    public let endpoint: Endpoint
    public let clientWantsUsage: Bool
    public private(set) var usage: Usage?
    /// The last `finish_reason` any choice reported.
    public private(set) var finishReason: String?
    /// Chunks that carried generated output (content, text, tool call or refusal pieces), and its bytes.
    public private(set) var outputChunks = 0
    public private(set) var outputBytes = 0
    /// Choices that have produced something but not yet a finish reason.
    public private(set) var unfinishedChoices: Set<Int> = []
    /// Whether to keep the generated text (`relayedText`), for counting it with the engine's
    /// tokenizer; off unless asked, so a relay keeps no content by default.
    public var collectsText = false
    public private(set) var relayedText = ""

    /// Whether ordinary chunks are rewritten at the byte level (`ChunkScan`); off, every chunk goes
    /// through the tree (tests compare the two).
    public var rewritesBytes = true
    /// `identity`'s id and model as JSON strings, made once per stream.
    private let idJSON: [UInt8]
    private let modelJSON: [UInt8]

    public init(identity: ResponseIdentity, endpoint: Endpoint, clientWantsUsage: Bool) {
        self.identity = identity
        self.endpoint = endpoint
        self.clientWantsUsage = clientWantsUsage
        self.idJSON = JSONValue.string(identity.id).serialized()
        self.modelJSON = JSONValue.string(identity.model).serialized()
    }

    /// What one upstream chunk is for a client in another dialect: the chunk itself, stamped.
    public enum ChunkAction: Sendable {
        case chunk(JSONObject)
        case drop
        case upstreamError(JSONObject)
    }

    public mutating func relay(_ payload: [UInt8]) throws(UpstreamError) -> Action {
        if rewritesBytes, !collectsText, let scan = ChunkScan.scan(payload) { return relay(payload, scanned: scan) }
        return switch try relayChunk(payload) {
        case .chunk(let chunk): .forward(SSE.event(chunk))
        case .drop: .drop
        case .upstreamError(let error): .upstreamError(error)
        }
    }

    public mutating func relayChunk(_ payload: [UInt8]) throws(UpstreamError) -> ChunkAction {
        guard case .object(var chunk) = try? JSONValue.parse(payload) else {
            throw .invalidResponse("a stream event is not a JSON object")
        }
        if let error = chunk["error"], !error.isNull {
            return .upstreamError(error.objectValue ?? JSONObject(["message": error]))
        }
        if let reported = Usage(chunk["usage"]) { usage = reported }
        let choices = chunk["choices"]?.arrayValue ?? []
        for choice in choices {
            let index = choice["index"]?.intValue ?? 0
            if let reason = choice["finish_reason"], !reason.isNull {
                finishReason = reason.stringValue ?? finishReason
                unfinishedChoices.remove(index)
            } else {
                unfinishedChoices.insert(index)
            }
            if collectsText {
                relayedText += choice["text"]?.stringValue ?? choice["delta"]?["content"]?.stringValue ?? ""
            }
            let bytes = OutputMeasure.bytes(ofChunkChoice: choice)
            if bytes > 0 {
                outputChunks += 1
                outputBytes += bytes
            }
        }
        if !clientWantsUsage {
            if choices.isEmpty && chunk["usage"] != nil { return .drop }
            chunk["usage"] = nil
        }
        identity.stamp(&chunk, endpoint: endpoint)
        return .chunk(chunk)
    }
}

extension StreamRelay {
    /// `relayChunk` and `SSE.event` without the tree: the same bookkeeping from the scan, and the
    /// upstream's bytes with `id` and `model` replaced (or added at the end, as the tree would) and
    /// `usage` taken out when the client did not ask for it.
    mutating func relay(_ payload: [UInt8], scanned scan: ChunkScan) -> Action {
        if let member = scan.usage, payload[member.value.lowerBound] != UInt8(ascii: "n"),
            let reported = Usage(try? JSONValue.parse(Array(payload[member.value])))
        {
            usage = reported
        }
        for choice in scan.choices {
            if let reason = choice.finishReason {
                finishReason = reason
                unfinishedChoices.remove(choice.index)
            } else {
                unfinishedChoices.insert(choice.index)
            }
            if choice.outputBytes > 0 {
                outputChunks += 1
                outputBytes += choice.outputBytes
            }
        }
        var removal: Range<Int>?
        if !clientWantsUsage, let member = scan.usage {
            if scan.choices.isEmpty { return .drop }
            if let next = member.nextKeyStart {
                removal = member.keyStart..<next
            } else if let before = scan.beforeUsage {
                removal = before.value.upperBound..<member.value.upperBound
            } else {
                removal = member.keyStart..<member.value.upperBound
            }
        }
        // At most three edits (id, model, the usage taken out), kept in order without an array:
        // this runs for every relayed event, and each allocation here was one per event.
        var first = scan.id.flatMap { endpoint.stampsID ? Edit(range: $0.value, bytes: idJSON) : nil }
        var second = scan.model.map { Edit(range: $0.value, bytes: modelJSON) }
        var third = removal.map { Edit(range: $0, bytes: []) }
        Edit.order(&first, &second)
        Edit.order(&second, &third)
        Edit.order(&first, &second)
        let missingID = endpoint.stampsID && scan.id == nil
        let missingModel = scan.model == nil

        var out: [UInt8] = []
        out.reserveCapacity(payload.count + idJSON.count + modelJSON.count + 24)
        out.append(contentsOf: "data: ".utf8)
        var position = 0
        func apply(_ edit: Edit?) {
            guard let edit else { return }
            out.append(contentsOf: payload[position..<edit.range.lowerBound])
            out.append(contentsOf: edit.bytes)
            position = edit.range.upperBound
        }
        apply(first)
        apply(second)
        apply(third)
        var members = scan.memberCount - (removal == nil ? 0 : 1)
        if missingID || missingModel {
            out.append(contentsOf: payload[position..<scan.objectEnd])
            position = scan.objectEnd
            if missingID {
                if members > 0 { out.append(UInt8(ascii: ",")) }
                out.append(contentsOf: #""id":"#.utf8)
                out.append(contentsOf: idJSON)
                members += 1
            }
            if missingModel {
                if members > 0 { out.append(UInt8(ascii: ",")) }
                out.append(contentsOf: #""model":"#.utf8)
                out.append(contentsOf: modelJSON)
                members += 1
            }
        }
        out.append(contentsOf: payload[position...])
        out.append(0x0A)
        out.append(0x0A)
        return .forward(out)
    }

    /// One replacement in a relayed event's bytes.
    private struct Edit {
        var range: Range<Int>
        var bytes: [UInt8]

        /// Swaps the two so that the earlier range comes first (nil last).
        static func order(_ a: inout Edit?, _ b: inout Edit?) {
            guard let right = b else { return }
            if let left = a, left.range.lowerBound <= right.range.lowerBound { return }
            swap(&a, &b)
        }
    }

    /// How a stream stopped by its caller ends: a finish chunk (`finish_reason: "stop"`) for every
    /// choice still open, carrying the extra top-level `"end_reason": "cancelled"`, then the usage
    /// chunk if the client asked for usage. `[DONE]` follows.
    public func cancellationChunks(usage: Usage) -> [JSONObject] {
        var header: JSONObject = [
            "id": .string(identity.id), "object": .string(endpoint.chunkObject), "created": .int(identity.created),
            "model": .string(identity.model),
        ]
        let indices = unfinishedChoices.isEmpty ? [0] : unfinishedChoices.sorted()
        var finish = header
        finish["choices"] = .array(
            indices.map { index in
                endpoint.output == .text
                    ? .object(["index": .int(index), "text": "", "logprobs": nil, "finish_reason": "stop"])
                    : .object(["index": .int(index), "delta": .object([:]), "logprobs": nil, "finish_reason": "stop"])
            })
        if clientWantsUsage { finish["usage"] = .null }
        finish["end_reason"] = "cancelled"
        guard clientWantsUsage else { return [finish] }
        header["choices"] = .array([])
        header["usage"] = usage.json
        header["end_reason"] = "cancelled"
        return [finish, header]
    }
}

/// Server-sent events framed as OpenAI frames them.
public enum SSE {
    public static let done: [UInt8] = Array("data: [DONE]\n\n".utf8)

    public static func event(_ object: JSONObject) -> [UInt8] {
        var out: [UInt8] = Array("data: ".utf8)
        out.reserveCapacity(256)
        object.write(into: &out)
        out.append(contentsOf: [0x0A, 0x0A])
        return out
    }

    /// `data: {"error":{…}}` — how a stream that cannot finish says so.
    public static func errorEvent(_ error: JSONObject) -> [UInt8] {
        event(JSONObject(["error": .object(error)]))
    }
}

/// How much generated output a choice carries, in UTF-8 bytes: text, content, refusal, tool-call
/// names and arguments. What the gateway meters when an upstream reports no usage.
public enum OutputMeasure {
    public static func bytes(ofChunkChoice choice: JSONValue) -> Int {
        var total = choice["text"]?.stringValue?.utf8.count ?? 0
        if let delta = choice["delta"] { total += bytes(ofMessage: delta) }
        return total
    }

    public static func bytes(ofMessage message: JSONValue) -> Int {
        var total = (message["content"]?.stringValue?.utf8.count ?? 0) + (message["refusal"]?.stringValue?.utf8.count ?? 0)
            + (message["reasoning_content"]?.stringValue?.utf8.count ?? 0)
        for call in message["tool_calls"]?.arrayValue ?? [] {
            total += (call["function"]?["name"]?.stringValue?.utf8.count ?? 0)
                + (call["function"]?["arguments"]?.stringValue?.utf8.count ?? 0)
        }
        return total
    }

    /// Output of a whole response: every choice's message or text.
    public static func bytes(ofResponse response: JSONObject) -> Int {
        (response["choices"]?.arrayValue ?? []).reduce(0) { sum, choice in
            sum + (choice["text"]?.stringValue?.utf8.count ?? 0) + (choice["message"].map(bytes(ofMessage:)) ?? 0)
        }
    }
}
