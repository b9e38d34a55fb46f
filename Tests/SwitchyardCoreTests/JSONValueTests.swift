import Testing

@testable import SwitchyardCore

@Suite struct JSONValueTests {
    @Test func roundTripKeepsOrderNumbersAndEscapes() throws {
        let text =
            #"{"z":1,"a":[true,false,null],"seed":123456789012345678901234567890,"f":-1.5e-7,"s":"q\"\\\n\t\u0001é😀","o":{}}"#
        let value = try JSONValue.parse(text)
        #expect(value.serializedString() == text)
        #expect(value["seed"] == .number("123456789012345678901234567890"))
        #expect(value["s"]?.stringValue == "q\"\\\n\t\u{1}é😀")
    }

    @Test func unicodeEscapesAndSurrogatePairsDecode() throws {
        let value = try JSONValue.parse(#"["\u00e9\ud83d\ude00", "\ud800x"]"#)
        #expect(value.arrayValue?[0].stringValue == "é😀")
        #expect(value.arrayValue?[1].stringValue == "\u{FFFD}x")
    }

    @Test(arguments: [
        "", "{", "{\"a\"}", "[1,]", "01", "1.", "-", "tru", "\"abc", "{\"a\":1}x", "[1 2]", "\"\u{01}\"", "nul",
    ])
    func rejectsMalformedInput(_ text: String) {
        #expect(throws: JSONParseError.self) { try JSONValue.parse(text) }
    }

    @Test func deepNestingIsRefusedNotCrashing() {
        let deep = String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
        #expect(throws: JSONParseError.self) { try JSONValue.parse(deep) }
    }

    @Test func objectSubscriptReplacesInPlaceAndRemoves() {
        var object: JSONObject = ["model": "a", "messages": .array([]), "stream": true]
        object["model"] = "b"
        object["stream"] = nil
        object["extra"] = 1
        #expect(object.serialized() == Array(#"{"model":"b","messages":[],"extra":1}"#.utf8))
    }
}
