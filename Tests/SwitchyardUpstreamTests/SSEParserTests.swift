import Testing

@testable import SwitchyardUpstream

@Suite struct SSEParserTests {
    func events(_ pieces: [String]) -> [String] {
        var parser = SSEParser()
        var out: [String] = []
        for piece in pieces { parser.feed(Array(piece.utf8)) { out.append(String(decoding: $0, as: UTF8.self)) } }
        parser.finish { out.append(String(decoding: $0, as: UTF8.self)) }
        return out
    }

    @Test func splitsEventsAcrossArbitraryPieces() {
        let body = "data: {\"a\":1}\n\ndata: {\"b\":2}\n\ndata: [DONE]\n\n"
        let whole = events([body])
        #expect(whole == ["{\"a\":1}", "{\"b\":2}", "[DONE]"])
        let bytewise = events(body.map { String($0) })
        #expect(bytewise == whole)
    }

    @Test func handlesCRLFCommentsMultilineAndMissingFinalBlankLine() {
        #expect(events([": keep-alive\r\n\r\ndata:x\r\ndata: y\r\n\r\nevent: ping\nid: 3\n\ndata: last"]) == ["x\ny", "last"])
        #expect(events(["data: a\r", "\ndata: b\r\r"]) == ["a\nb"])
    }
}
