import AsyncHTTPClient
import NIOCore
import SwitchyardCore
import Testing

@Suite(.timeLimit(.minutes(1))) struct StreamingTests {
    @Test func chunksKeepOneGatewayIdAndEndWithDone() async throws {
        try await GatewayHarness.run { gateway in
            let reply = try await gateway.post("/v1/chat/completions", chat("m-alias", stream: true, extra: #""fake":{"tokens":3}"#))
            #expect(reply.status == 200)
            #expect(reply.header("content-type") == "text/event-stream")
            #expect(reply.text.hasPrefix("data: {"))
            #expect(reply.text.hasSuffix("data: [DONE]\n\n"))
            let chunks = reply.chunks
            #expect(chunks.count == 5)  // role, 3 tokens, finish
            let ids = Set(chunks.compactMap { $0["id"]?.stringValue })
            #expect(ids.count == 1)
            #expect(ids.first?.hasPrefix("chatcmpl-") == true && ids.first?.contains("fake") == false)
            #expect(chunks.allSatisfy { $0["model"] == "m" && $0["object"] == "chat.completion.chunk" })
            // Usage is always asked of the upstream but not shown to a client that did not ask.
            #expect(gateway.lastUpstreamBody["stream_options"]?["include_usage"] == true)
            #expect(chunks.allSatisfy { $0["usage"] == nil })
            let text = chunks.compactMap { $0["choices"]?.arrayValue?.first?["delta"]?["content"]?.stringValue }.joined()
            #expect(text == "w1 w2 w3")
        }
    }

    @Test func theUsageChunkComesWhenAskedFor() async throws {
        try await GatewayHarness.run { gateway in
            let extra = #""stream_options":{"include_usage":true},"fake":{"tokens":2}"#
            let reply = try await gateway.post("/v1/chat/completions", chat("m", stream: true, extra: extra))
            let last = try #require(reply.chunks.last)
            #expect(last["choices"] == .array([]))
            #expect(last["usage"]?["completion_tokens"] == 2)
            #expect(reply.events.last == "[DONE]")
        }
    }

    @Test func toolCallDeltasStreamThrough() async throws {
        try await GatewayHarness.run { gateway in
            let extra = #""tools":[{"type":"function","function":{"name":"get_weather","parameters":{}}}],"fake":{"tool_call":true}"#
            let reply = try await gateway.post("/v1/chat/completions", chat("m", stream: true, extra: extra))
            let deltas = reply.chunks.compactMap { $0["choices"]?.arrayValue?.first?["delta"]?["tool_calls"]?.arrayValue?.first }
            #expect(deltas.first?["function"]?["name"] == "get_weather")
            #expect(deltas.compactMap { $0["function"]?["arguments"]?.stringValue }.joined() == #"{"x":1,"y":"two"}"#)
            #expect(reply.chunks.last?["choices"]?.arrayValue?.first?["finish_reason"] == "tool_calls")
        }
    }

    @Test func aWholeAnswerIsTurnedIntoAStreamForAnUpstreamThatCannotStream() async throws {
        try await GatewayHarness.run { gateway in
            let extra = #""stream_options":{"include_usage":true},"fake":{"tokens":3}"#
            let reply = try await gateway.post("/v1/chat/completions", chat("m-nostream", stream: true, extra: extra))
            #expect(gateway.lastUpstreamBody["stream"] == false)
            #expect(gateway.lastUpstreamBody["stream_options"] == nil)
            #expect(reply.header("content-type") == "text/event-stream")
            let chunks = reply.chunks
            #expect(chunks.first?["choices"]?.arrayValue?.first?["delta"]?["content"] == "w1 w2 w3")
            #expect(chunks.first?["choices"]?.arrayValue?.first?["delta"]?["role"] == "assistant")
            #expect(chunks.dropLast().last?["choices"]?.arrayValue?.first?["finish_reason"] == "stop")
            #expect(chunks.last?["usage"]?["total_tokens"] != nil)
            #expect(Set(chunks.compactMap { $0["id"]?.stringValue }).count == 1)
            #expect(reply.events.last == "[DONE]")
        }
    }

    @Test func completionsStreamToo() async throws {
        try await GatewayHarness.run { gateway in
            let reply = try await gateway.post("/v1/completions", #"{"model":"m","prompt":"x","stream":true,"fake":{"tokens":2}}"#)
            #expect(reply.chunks.allSatisfy { $0["object"] == "text_completion" && $0["model"] == "m" })
            #expect(reply.chunks.compactMap { $0["choices"]?.arrayValue?.first?["text"]?.stringValue }.joined() == "w1 w2")
            #expect(reply.events.last == "[DONE]")
        }
    }

    /// Each chunk must reach the client as soon as the upstream sends it: with 250 ms between
    /// tokens, the first token arrives long before the last (buffered, it would come with the last).
    @Test func chunksAreNotBuffered() async throws {
        try await GatewayHarness.run { gateway in
            let request = gateway.request(chat("m", stream: true, extra: #""fake":{"tokens":4,"delay_ms":250}"#))
            let start = ContinuousClock.now
            let response = try await gateway.http.execute(request, timeout: .seconds(10))
            var arrivals: [Duration] = []
            var text = ""
            for try await piece in response.body {
                text += String(buffer: piece)
                if text.contains("\"content\":\"w") && arrivals.isEmpty { arrivals.append(.now - start) }
            }
            let total = ContinuousClock.now - start
            let first = try #require(arrivals.first)
            #expect(total >= .milliseconds(1000))
            #expect(first < .milliseconds(650), "first token after \(first), whole stream \(total)")
        }
    }
}
