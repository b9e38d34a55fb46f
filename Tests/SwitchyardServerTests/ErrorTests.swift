import SwitchyardCore
import Testing

@Suite(.timeLimit(.minutes(1))) struct ErrorTests {
    func expectOpenAIError(_ reply: GatewayHarness.Reply, status: Int, code: String? = nil, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(reply.status == status, sourceLocation: sourceLocation)
        let error = reply.json["error"]
        #expect(error?["message"]?.stringValue?.isEmpty == false, sourceLocation: sourceLocation)
        #expect(error?["type"]?.stringValue != nil, sourceLocation: sourceLocation)
        #expect(error?.objectValue?.members.map(\.key) == ["message", "type", "param", "code"], sourceLocation: sourceLocation)
        if let code { #expect(error?["code"]?.stringValue == code, sourceLocation: sourceLocation) }
    }

    @Test func badRequestsAreRefusedInOpenAIShape() async throws {
        try await GatewayHarness.run { gateway in
            expectOpenAIError(try await gateway.post("/v1/chat/completions", "{nope"), status: 400)
            expectOpenAIError(try await gateway.post("/v1/chat/completions", #"{"model":"m"}"#), status: 400, code: "missing_required_parameter")
            expectOpenAIError(try await gateway.post("/v1/chat/completions", #"{"model":"m","messages":{}}"#), status: 400, code: "invalid_type")
            expectOpenAIError(try await gateway.post("/v1/chat/completions", chat("unknown")), status: 404, code: "model_not_found")
            expectOpenAIError(try await gateway.get("/v1/unknown"), status: 404, code: "unknown_url")
            let big = chat("m", extra: "\"pad\":\"" + String(repeating: "x", count: 70 * 1024) + "\"")
            expectOpenAIError(try await gateway.post("/v1/chat/completions", big), status: 413, code: "request_too_large")
            #expect(gateway.upstream.requests.isEmpty)
        }
    }

    @Test func upstreamRefusalsPassThroughWithStatusAndMessage() async throws {
        try await GatewayHarness.run { gateway in
            let refused = try await gateway.post(
                "/v1/chat/completions", chat("m", extra: #""fake":{"status":400,"message":"bad thing","code":"nope"}"#))
            expectOpenAIError(refused, status: 400, code: "nope")
            #expect(refused.json["error"]?["message"] == "bad thing")

            let broken = try await gateway.post("/v1/chat/completions", chat("m", extra: #""fake":{"status":500}"#))
            expectOpenAIError(broken, status: 502, code: "upstream_error")

            let credentials = try await gateway.post("/v1/chat/completions", chat("m", extra: #""fake":{"status":401}"#))
            expectOpenAIError(credentials, status: 502, code: "upstream_error")

            // Last: the upstream's retry-after keeps its deployment out for 7 s (RoutingTests).
            let limited = try await gateway.post(
                "/v1/chat/completions", chat("m", stream: true, extra: #""fake":{"status":429,"retry_after":"7"}"#))
            expectOpenAIError(limited, status: 429)
            #expect(limited.header("retry-after") == "7")
        }
    }

    @Test func unreachableAndSlowUpstreamsAre502And504() async throws {
        try await GatewayHarness.run { gateway in
            let start = ContinuousClock.now
            let dead = try await gateway.post("/v1/chat/completions", chat("m-dead"))
            #expect(dead.status == 502 || dead.status == 504)
            expectOpenAIError(dead, status: dead.status)
            #expect(ContinuousClock.now - start < .seconds(3))

            let slow = try await gateway.post("/v1/chat/completions", chat("m", extra: #""fake":{"first_byte_delay_ms":3000}"#))
            expectOpenAIError(slow, status: 504, code: "upstream_timeout")

            let slowStream = try await gateway.post(
                "/v1/chat/completions", chat("m", stream: true, extra: #""fake":{"first_byte_delay_ms":3000}"#))
            expectOpenAIError(slowStream, status: 504, code: "upstream_timeout")

            let diesFirst = try await gateway.post("/v1/chat/completions", chat("m", stream: true, extra: #""fake":{"die_after":0}"#))
            #expect(diesFirst.status == 502 || diesFirst.status == 200)
        }
    }

    @Test func anUpstreamThatDiesMidStreamEndsWithAnErrorEventNotDone() async throws {
        try await GatewayHarness.run { gateway in
            // Paced chunks: a chunk sent in the same instant as the close can be lost (docs/ARCHITECTURE.md).
            let reply = try await gateway.post(
                "/v1/chat/completions", chat("m", stream: true, extra: #""fake":{"die_after":3,"delay_ms":30}"#))
            #expect(reply.status == 200)
            let events = reply.events
            #expect(!events.contains("[DONE]"))
            let last = try JSONValue.parse(try #require(events.last))
            #expect(last["error"]?["code"] == "upstream_error")
            #expect(reply.chunks.contains { $0["choices"]?.arrayValue?.first?["delta"]?["content"] == "w2" || $0["choices"]?.arrayValue?.first?["delta"]?["content"] == " w2" })
        }
    }

    @Test func anUpstreamThatStallsMidStreamTimesOutWithAnErrorEvent() async throws {
        try await GatewayHarness.run { gateway in
            let start = ContinuousClock.now
            let reply = try await gateway.post("/v1/chat/completions", chat("m", stream: true, extra: #""fake":{"stall_after":1}"#))
            #expect(ContinuousClock.now - start < .seconds(3))
            #expect(!reply.events.contains("[DONE]"))
            let last = try JSONValue.parse(try #require(reply.events.last))
            #expect(last["error"]?["code"] == "upstream_timeout")
        }
    }
}
