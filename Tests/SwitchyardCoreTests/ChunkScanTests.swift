import SwitchyardCore
import Testing

/// The byte-level chunk rewrite (`ChunkScan`) must come to what the tree does: the same JSON out, the
/// same bookkeeping, the same drops and errors — and give up, for the tree, on what it cannot read.
@Suite struct ChunkScanTests {
    static let chunks: [String] = [
        #"{"id":"up-1","object":"chat.completion.chunk","created":7,"model":"up-model","choices":[{"index":0,"delta":{"role":"assistant","content":"Hel"},"logprobs":null,"finish_reason":null}]}"#,
        #"{"id":"up-1","object":"chat.completion.chunk","created":7,"model":"up-model","system_fingerprint":"fp","choices":[{"index":0,"delta":{"content":"lo \u00e9\ud83d\ude00\n\"x\""},"finish_reason":null}],"usage":null}"#,
        #"{"id":"up-1","object":"chat.completion.chunk","created":7,"model":"up-model","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}"#,
        #"{"id":"up-1","object":"chat.completion.chunk","created":7,"model":"up-model","choices":[],"usage":{"prompt_tokens":5,"completion_tokens":9,"total_tokens":14}}"#,
        #"{"usage":{"prompt_tokens":5,"completion_tokens":9,"total_tokens":14},"choices":[{"index":1,"delta":{"content":"x"},"finish_reason":null}],"model":"m"}"#,
        #"{"choices":[{"index":0,"delta":{"content":"no id or model"}}]}"#,
        #"{"id":null,"model":17,"choices":[{"index":2,"text":"text completion","finish_reason":"length"}]}"#,
        #"{ "id" : "spaced" , "model" : "m" , "choices" : [ { "index" : 0 , "delta" : { "content" : "a b" } } ] , "usage" : null }"#,
        #"{"id":"r","model":"m","choices":[{"index":0,"delta":{"reasoning_content":"think","refusal":null},"finish_reason":null}],"extra":{"nested":[1,2.5e3,-0.5,true,false,null,{"a":[]}]}}"#,
        #"{}"#,
        #"{"usage":{"prompt_tokens":1,"completion_tokens":1}}"#,
        // Given up on, for the tree: tool calls, an error, a line break, an escaped key, a lone surrogate.
        #"{"id":"t","model":"m","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"name":"f","arguments":"{}"}}]},"finish_reason":null}]}"#,
        #"{"error":{"message":"boom"}}"#,
        "{\"id\":\"x\",\n\"model\":\"m\",\"choices\":[]}",
        #"{"\u0069d":"x","choices":[]}"#,
        #"{"id":"x","choices":[{"index":0,"delta":{"content":"\ud800"}}]}"#,
        #"{"id":"x","id":"y","choices":[]}"#,
    ]

    static let invalid: [String] = [
        #"{"id":"x""#, #"[1,2]"#, #"{"id":01}"#, #"{"choices":[{"index":0,}]}"#, #"{"a":tru}"#, "", #"{"a":"\x"}"#,
    ]

    func relays(wantsUsage: Bool, endpoint: Endpoint = .chatCompletions) -> (bytes: StreamRelay, tree: StreamRelay) {
        let identity = ResponseIdentity(id: "chatcmpl-gateway", model: "public \"name\"", created: 1)
        let bytes = StreamRelay(identity: identity, endpoint: endpoint, clientWantsUsage: wantsUsage)
        var tree = bytes
        tree.rewritesBytes = false
        return (bytes, tree)
    }

    func json(_ action: StreamRelay.Action) throws -> JSONValue? {
        guard case .forward(let bytes) = action else { return nil }
        #expect(bytes.starts(with: Array("data: ".utf8)) && bytes.suffix(2) == [0x0A, 0x0A])
        #expect(!bytes.dropLast(2).contains(0x0A))
        return try JSONValue.parse(Array(bytes.dropFirst(6).dropLast(2)))
    }

    @Test(arguments: [true, false])
    func theBytesComeToWhatTheTreeMakes(wantsUsage: Bool) throws {
        for endpoint in [Endpoint.chatCompletions, .completions] {
            var (bytes, tree) = relays(wantsUsage: wantsUsage, endpoint: endpoint)
            for chunk in Self.chunks {
                let payload = Array(chunk.utf8)
                let fast = try bytes.relay(payload)
                let slow = try tree.relay(payload)
                switch (fast, slow) {
                case (.drop, .drop): break
                case (.upstreamError(let a), .upstreamError(let b)): #expect(a == b)
                default: #expect(try json(fast) == json(slow), "\(chunk)")
                }
                #expect(bytes.usage == tree.usage && bytes.finishReason == tree.finishReason, "\(chunk)")
                #expect(bytes.outputChunks == tree.outputChunks && bytes.outputBytes == tree.outputBytes, "\(chunk)")
                #expect(bytes.unfinishedChoices == tree.unfinishedChoices, "\(chunk)")
            }
        }
    }

    @Test func invalidChunksFailAlike() {
        var (bytes, tree) = relays(wantsUsage: false)
        for chunk in Self.invalid {
            #expect(ChunkScan.scan(Array(chunk.utf8)) == nil, "\(chunk)")
            #expect(throws: UpstreamError.self) { try bytes.relay(Array(chunk.utf8)) }
            #expect(throws: UpstreamError.self) { try tree.relay(Array(chunk.utf8)) }
        }
    }

    @Test func ordinaryChunksAreScannedAndUnusualOnesLeftToTheTree() throws {
        let scanned = Self.chunks.map { ChunkScan.scan(Array($0.utf8)) != nil }
        #expect(scanned == Array(repeating: true, count: 11) + Array(repeating: false, count: 6))
        let scan = try #require(ChunkScan.scan(Array(Self.chunks[1].utf8)))
        // "lo é😀\n\"x\"": 3 + 2 + 4 + 1 + 3 bytes once decoded.
        #expect(scan.choices.count == 1 && scan.choices[0].index == 0 && scan.choices[0].finishReason == nil)
        #expect(scan.choices[0].outputBytes == 13)
        #expect(scan.memberCount == 7 && scan.usage != nil && scan.beforeUsage != nil)
    }

    @Test func theRewriteKeepsTheUpstreamsBytesOtherwise() throws {
        var (bytes, _) = relays(wantsUsage: false)
        let chunk = #"{"id":"up","model":"x","choices":[{"index":0,"delta":{"content":"\u00e9"}}],"usage":null}"#
        guard case .forward(let out) = try bytes.relay(Array(chunk.utf8)) else {
            Issue.record("dropped")
            return
        }
        #expect(
            String(decoding: out, as: UTF8.self)
                == #"data: {"id":"chatcmpl-gateway","model":"public \"name\"","choices":[{"index":0,"delta":{"content":"\u00e9"}}]}"#
                + "\n\n")
    }

    @Test func idsAreBase62AndUnguessable() {
        let alphabet = Set("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
        var seen = Set<String>()
        var counts: [Character: Int] = [:]
        for _ in 0..<2000 {
            let id = ResponseIdentity.randomID()
            #expect(id.count == 28 && id.allSatisfy(alphabet.contains))
            seen.insert(id)
            for character in id.dropFirst(8) { counts[character, default: 0] += 1 }
        }
        #expect(seen.count == 2000)
        // 40 000 random characters over 62: about 645 each; every character appears, none is favoured.
        #expect(counts.count == 62 && counts.values.allSatisfy { $0 > 500 && $0 < 800 })
    }

    /// One `getentropy` per 256 bytes: a longer fill is several calls, every byte of it random.
    @Test func secureRandomFillsEveryByte() {
        let draws = (0..<40).map { _ in
            var draw = [UInt8](repeating: 0, count: 600)
            draw.withUnsafeMutableBytes { SecureRandom.fill($0) }
            return draw
        }
        #expect(draws.allSatisfy { $0.count == 600 })
        #expect(Set(draws).count == 40)
        // 24 000 bytes over 256 values: about 94 each; the tail past 512 is as random as the head.
        var counts = [Int](repeating: 0, count: 256)
        for draw in draws { for byte in draw { counts[Int(byte)] += 1 } }
        #expect(counts.allSatisfy { $0 > 40 && $0 < 160 })
        #expect(draws.map { $0.suffix(88) }.allSatisfy { Set($0).count > 40 })
    }

    @Test func idsSortByTheirTime() {
        let times: [Int64] = [0, 61, 62, 1_796_167_257_000, 1_796_167_257_001, 1_796_167_318_999, 9_000_000_000_000]
        let ids = times.map { ResponseIdentity.randomID(milliseconds: $0) }
        // Byte order (the ledger index's) is time order, whatever the random part.
        #expect(ids == ids.sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) })
        #expect(ids[0].hasPrefix("00000000") && ids[1].hasPrefix("0000000z") && ids[2].hasPrefix("00000010"))
        let now = ResponseIdentity.currentMilliseconds()
        let first = ResponseIdentity.randomID(), second = ResponseIdentity.randomID()
        #expect(first.prefix(8) <= second.prefix(8))
        let alphabet = Array("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
        let stamped = first.prefix(8).reduce(Int64(0)) { $0 * 62 + Int64(alphabet.firstIndex(of: $1)!) }
        #expect(stamped >= now && stamped < now + 60_000)
    }
}
