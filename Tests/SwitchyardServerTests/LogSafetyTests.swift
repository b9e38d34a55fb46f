import Logging
import SwitchyardCore
import Synchronization
import Testing

@testable import SwitchyardServer

/// The pieces that keep keys and forged lines out of the logs.
@Suite struct LogSafetyTests {
    @Test(arguments: [
        ("/llm_api/sk-sy-SECRET/alice/qwen/v1/chat/completions", nil, "/llm_api/***/alice/qwen/v1/chat/completions"),
        ("/llm_api/not-a-key-shape/alice//v1/chat/completions", nil, "/llm_api/***/alice//v1/chat/completions"),
        ("/llm_api/sk%2Dsy-SECRET/u/m/v1/models", nil, "/llm_api/***/u/m/v1/models"),
        ("/llm_api/suspend_current_generate", "openid=sk-sy-SECRET&userid=bob", "/llm_api/suspend_current_generate?openid=***&userid=bob"),
        ("/api_user/info", "OpenID=SECRET&type=json", "/api_user/info?OpenID=***&type=json"),
        ("/v1/usage", "limit=5&note=sk-live-SECRET", "/v1/usage?limit=5&note=***"),
        ("/v1/models/sk-SECRET", nil, "/v1/models/***"),
        ("/v1/chat/completions", nil, "/v1/chat/completions"),
    ] as [(String, String?, String)])
    func keysInPathsAndQueriesAreMasked(path: String, query: String?, expected: String) {
        let masked = LogSafe.target(path: path, query: query)
        #expect(masked == expected)
        #expect(!masked.contains("SECRET"))
    }

    @Test func controlCharactersCannotBreakALine() {
        #expect(LogSafe.text("a\nlevel=error b\r\t\\\u{1b}[31m\u{2028}") == #"a\nlevel=error b\r\t\\\u{1b}[31m\u{2028}"#)
        #expect(LogSafe.text(String(repeating: "x", count: 300), limit: 10) == "xxxxxxxxxx…")
    }

    @Test func requestIDsAreValidatedAndGenerated() {
        #expect(RequestID.accept("abc-123_.:/+=@X") == "abc-123_.:/+=@X")
        for bad in [nil, "", "a b", "a\nb", "\"", "ü", String(repeating: "x", count: 129)] as [String?] {
            #expect(RequestID.accept(bad) == nil)
        }
        let made = RequestID.make()
        #expect(made.count == 36 && made.hasPrefix("req_") && RequestID.accept(made) == made)
        #expect(RequestID.make() != made)
    }

    @Test func endReasonsFromUpstreamsAreShortSafeTokens() {
        #expect(EndReason(rawValue: "context_length_exceeded").rawValue == "context_length_exceeded")
        #expect(EndReason(rawValue: "stop").rawValue == "stop")
        #expect(EndReason(rawValue: "the prompt was: hello").rawValue == "other")
        #expect(EndReason(rawValue: String(repeating: "a", count: 65)).rawValue == "other")
        #expect(EndReason(rawValue: "").rawValue == "other")
        #expect(MetricLabel.endReason("made_up_by_upstream") == "other")
        #expect(MetricLabel.endReason("tool_calls") == "tool_calls")
    }

    @Test func jsonLinesAreOneObjectEachWithNumbersKept() throws {
        let lines = Mutex<[String]>([])
        var logger = Logger(label: "switchyard") { label in
            LineLogHandler(label: label, format: .json, level: .info, output: LogOutput { bytes in
                lines.withLock { $0.append(String(decoding: bytes, as: UTF8.self)) }
            })
        }
        logger[metadataKey: "request_id"] = "req_1"
        logger.debug("hidden")
        logger.info(
            "request\nforged",
            metadata: ["status": .stringConvertible(200), "ms": .stringConvertible(1.5), "stream": .stringConvertible(true),
                "user": "a\"b\nc", "level": "spoofed"])
        let written = lines.withLock { $0 }
        #expect(written.count == 1)
        let line = try #require(written.first)
        #expect(line.hasSuffix("}\n") && line.dropLast().contains("\n") == false)
        let object = try JSONValue.parse(Array(line.utf8))
        #expect(object["msg"]?.stringValue == "request\nforged")
        #expect(object["level"]?.stringValue == "info")
        #expect(object["status"] == .number("200") && object["ms"] == .number("1.5") && object["stream"] == .bool(true))
        #expect(object["user"]?.stringValue == "a\"b\nc" && object["request_id"]?.stringValue == "req_1")
        #expect(object["ts"]?.stringValue?.hasSuffix("Z") == true)
    }

    @Test func textLinesQuoteAndEscapeWhatCouldForgeALine() throws {
        let lines = Mutex<[String]>([])
        let logger = Logger(label: "switchyard") { label in
            LineLogHandler(label: label, format: .text, level: .info, output: LogOutput { bytes in
                lines.withLock { $0.append(String(decoding: bytes, as: UTF8.self)) }
            })
        }
        logger.info("request", metadata: ["status": .stringConvertible(200), "path": "/v1/a b", "user": "x\ny=1 \"z\""])
        let line = try #require(lines.withLock { $0 }.first)
        #expect(line.hasSuffix("\n") && line.dropLast().contains("\n") == false)
        #expect(line.contains(" info switchyard: request path=\"/v1/a b\" status=200 user=\"x\\ny=1 \\\"z\\\"\""))
        #expect(line.first?.isNumber == true && line.contains("Z info "))
    }

    @Test func librariesNeverGetTrace() {
        var logger = Logger(label: "x")
        logger.logLevel = .trace
        #expect(logger.heldAtDebug.logLevel == .debug)
        logger.logLevel = .warning
        #expect(logger.heldAtDebug.logLevel == .warning)
    }
}
