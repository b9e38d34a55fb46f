import Foundation
import Logging
import SwitchyardCore

/// The built-in `test` provider: a deterministic model that needs no network. It answers every
/// endpoint in OpenAI's shape, streams one token per configured delay, honours `max_tokens` and
/// `stream_options.include_usage`, and reports usage. Its words say plainly that they are a test.
public struct TestProvider: Provider {
    public let config: ProviderConfig

    public init(config: ProviderConfig) {
        self.config = config
    }

    static let words = [
        "This", " is", " Switchyard's", " built-in", " test", " model", ":", " it", " answers", " with",
        " deterministic", " text", " so", " that", " the", " gateway", " can", " be", " tried", " offline", ".",
    ]

    struct Plan {
        var tokens: [String]
        var finishReason: String
        var usage: Usage
        var model: JSONValue
    }

    func plan(for request: UpstreamRequest) -> Plan {
        let limit = request.body["max_completion_tokens"]?.intValue ?? request.body["max_tokens"]?.intValue
        let wanted = config.test.tokens
        let count = max(0, min(wanted, limit ?? wanted))
        let tokens = (0..<count).map { Self.words[$0 % Self.words.count] }
        let prompt = TokenEstimate.prompt(of: request.body, endpoint: request.endpoint)
        let images = Self.imageParts(request.body)
        if images > 0 {
            // A vision request: the answer says what arrived, so its images can be seen to have come.
            let seen = " It received \(images) image\(images == 1 ? "" : "s")."
            let tokens = Array(((0..<count).map { Self.words[$0 % Self.words.count] } + [seen]))
            return Plan(
                tokens: tokens, finishReason: count < wanted ? "length" : "stop",
                usage: Usage(promptTokens: prompt + 85 * images, completionTokens: tokens.count),
                model: request.body["model"] ?? .string("test"))
        }
        return Plan(
            tokens: tokens,
            finishReason: count < wanted ? "length" : "stop",
            usage: Usage(promptTokens: prompt, completionTokens: count),
            model: request.body["model"] ?? .string("test")
        )
    }

    public func send(_ request: UpstreamRequest, logger: Logger) async throws -> UpstreamResponse {
        let created = Int(Date().timeIntervalSince1970)
        if request.endpoint.output == .vectors {
            return UpstreamResponse(status: 200, body: .complete(embeddings(for: request).serialized()))
        }
        if request.endpoint.output == .media { return try await media(request, created: created) }
        let plan = plan(for: request)
        let id = JSONValue.string("test-" + UUID().uuidString)
        let delay = config.test.tokenDelay
        if !request.stream {
            for _ in plan.tokens { try await Task.sleep(for: delay) }
            return UpstreamResponse(
                status: 200, body: .complete(whole(plan, id: id, created: created, endpoint: request.endpoint).serialized()))
        }
        let includeUsage = request.body["stream_options"]?["include_usage"]?.boolValue == true
        let endpoint = request.endpoint
        let events = EventPump.start { events, _ in
            func chunk(_ choice: JSONObject, usage: JSONValue? = nil) -> [UInt8] {
                var object = JSONObject([
                    "id": id, "object": .string(endpoint.chunkObject), "created": .int(created), "model": plan.model,
                ])
                object["choices"] = .array([.object(choice)])
                if includeUsage { object["usage"] = .null }
                return object.serialized()
            }
            if endpoint.output == .message {
                events.yield(
                    chunk(["index": 0, "delta": .object(["role": "assistant", "content": ""]), "finish_reason": nil]))
            }
            for token in plan.tokens {
                try await Task.sleep(for: delay)
                let piece: JSONObject =
                    endpoint.output == .message
                    ? ["index": 0, "delta": .object(["content": .string(token)]), "finish_reason": nil]
                    : ["index": 0, "text": .string(token), "finish_reason": nil]
                events.yield(chunk(piece))
            }
            let finish = JSONValue.string(plan.finishReason)
            events.yield(
                chunk(
                    endpoint.output == .message
                        ? ["index": 0, "delta": .object([:]), "finish_reason": finish]
                        : ["index": 0, "text": "", "finish_reason": finish]))
            if includeUsage {
                let usage: JSONObject = [
                    "id": id, "object": .string(endpoint.chunkObject), "created": .int(created), "model": plan.model,
                    "choices": .array([]), "usage": plan.usage.json,
                ]
                events.yield(usage.serialized())
            }
        }
        return UpstreamResponse(status: 200, body: .events(events))
    }

    func whole(_ plan: Plan, id: JSONValue, created: Int, endpoint: Endpoint) -> JSONObject {
        let text = JSONValue.string(plan.tokens.joined())
        let choice: JSONObject =
            endpoint.output == .message
            ? [
                "index": 0, "message": .object(["role": "assistant", "content": text, "refusal": nil]),
                "logprobs": nil, "finish_reason": .string(plan.finishReason),
            ]
            : ["index": 0, "text": text, "logprobs": nil, "finish_reason": .string(plan.finishReason)]
        return [
            "id": id, "object": .string(endpoint.responseObject), "created": .int(created), "model": plan.model,
            "choices": .array([.object(choice)]), "usage": plan.usage.json,
        ]
    }

    /// Image parts (data URLs or URLs) in a chat request's messages.
    static func imageParts(_ body: JSONObject) -> Int {
        (body["messages"]?.arrayValue ?? []).reduce(0) { sum, message in
            sum + (message["content"]?.arrayValue ?? []).filter { $0["type"] == "image_url" }.count
        }
    }

    /// Vectors derived from a hash of each input, so equal inputs embed equally.
    func embeddings(for request: UpstreamRequest) -> JSONObject {
        let inputs: [String]
        switch request.body["input"] {
        case .string(let text)?: inputs = [text]
        case .array(let items)?: inputs = items.map { $0.stringValue ?? $0.serializedString() }
        default: inputs = []
        }
        let dimensions = request.body["dimensions"]?.intValue.map { max(1, min($0, 4096)) } ?? 16
        let base64 = request.body["encoding_format"]?.stringValue == "base64"
        let data: [JSONValue] = inputs.enumerated().map { index, text in
            let vector = Self.vector(for: text, dimensions: dimensions)
            let embedding: JSONValue =
                base64
                ? .string(Self.base64(vector))
                : .array(vector.map { .number(String($0)) })
            return .object(["object": "embedding", "index": .int(index), "embedding": embedding])
        }
        let prompt = TokenEstimate.prompt(of: request.body, endpoint: .embeddings)
        return [
            "object": "list", "data": .array(data), "model": request.body["model"] ?? "test",
            "usage": .object(["prompt_tokens": .int(prompt), "total_tokens": .int(prompt)]),
        ]
    }

    static func vector(for text: String, dimensions: Int) -> [Float] {
        var state: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in text.utf8 { state = (state ^ UInt64(byte)) &* 0x100_0000_01b3 }
        var values: [Float] = []
        var norm: Float = 0
        for _ in 0..<dimensions {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            let value = Float(Int64(bitPattern: state >> 11) % 2001 - 1000) / 1000
            values.append(value)
            norm += value * value
        }
        let scale = norm > 0 ? 1 / norm.squareRoot() : 1
        return values.map { $0 * scale }
    }

    /// OpenAI's base64 form: the little-endian float32 array's bytes.
    static func base64(_ vector: [Float]) -> String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(vector.count * 4)
        for value in vector { withUnsafeBytes(of: value.bitPattern.littleEndian) { bytes.append(contentsOf: $0) } }
        return Data(bytes).base64EncodedString()
    }
}
