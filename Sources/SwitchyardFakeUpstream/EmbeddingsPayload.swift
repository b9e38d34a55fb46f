import Foundation

/// `/v1/embeddings` responses with small vectors that depend only on the input, so tests
/// can compare results across calls and through the gateway.
enum EmbeddingsPayload {
    static let dimensions = 8

    /// The response body, or nil when the request has no usable `input`.
    static func body(for request: [String: Any], directives: FakeDirectives) -> String? {
        let inputs = JSONValues.inputs(request["input"])
        guard !inputs.isEmpty else { return nil }
        let base64 = request["encoding_format"] as? String == "base64"
        var data: [String] = []
        data.reserveCapacity(inputs.count)
        for (index, input) in inputs.enumerated() {
            let vector = vector(for: input.text)
            let embedding = base64 ? JSONText.quoted(base64Encoded(vector)) : "[" + vector.map(render).joined(separator: ",") + "]"
            data.append(#"{"object":"embedding","index":\#(index),"embedding":\#(embedding)}"#)
        }
        let model = request["model"] as? String ?? "fake-model"
        let promptTokens = max(inputs.reduce(0) { $0 + $1.tokens }, 1)
        let usage = directives.noUsage ? "" : #","usage":{"prompt_tokens":\#(promptTokens),"total_tokens":\#(promptTokens)}"#
        return #"{"object":"list","data":["# + data.joined(separator: ",") + #"],"model":"# + JSONText.quoted(model)
            + usage + "}"
    }

    /// FNV-1a of the text seeds a SplitMix64 sequence mapped onto [-1, 1).
    static func vector(for text: String) -> [Float] {
        var seed: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in text.utf8 {
            seed = (seed ^ UInt64(byte)) &* 0x0000_0100_0000_01b3
        }
        var values: [Float] = []
        values.reserveCapacity(dimensions)
        for _ in 0..<dimensions {
            seed &+= 0x9e37_79b9_7f4a_7c15
            var mixed = seed
            mixed = (mixed ^ (mixed >> 30)) &* 0xbf58_476d_1ce4_e5b9
            mixed = (mixed ^ (mixed >> 27)) &* 0x94d0_49bb_1331_11eb
            mixed ^= mixed >> 31
            let unit = Double(mixed >> 11) / Double(UInt64(1) << 53)
            // Rounded so the JSON stays short and survives a float32 round trip unchanged.
            values.append(Float((unit * 2 - 1) * 1e4).rounded() / 1e4)
        }
        return values
    }

    private static func render(_ value: Float) -> String {
        "\(value)"
    }

    /// The `encoding_format: "base64"` form: little-endian float32 values, as OpenAI sends them.
    private static func base64Encoded(_ vector: [Float]) -> String {
        var bytes = Data()
        bytes.reserveCapacity(vector.count * 4)
        for value in vector {
            withUnsafeBytes(of: value.bitPattern.littleEndian) { bytes.append(contentsOf: $0) }
        }
        return bytes.base64EncodedString()
    }
}
