import SwitchyardCore
import Testing

@Suite struct MultipartFormTests {
    @Test func encodedFormsParseBackToTheSameParts() throws {
        let form = MultipartForm(parts: [
            .init(name: "purpose", data: Array("vision".utf8)),
            .init(name: "file", filename: "cat.png", contentType: "image/png", data: [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]),
            .init(name: "empty", data: []),
        ])
        let parsed = try MultipartForm.parse(form.encoded(boundary: "xyz"), boundary: "xyz")
        #expect(parsed == form)
        #expect(parsed["purpose"]?.text == "vision")
        #expect(parsed["file"]?.filename == "cat.png")
    }

    @Test func aClientsBodyIsReadAsSent() throws {
        let body = Array(
            ("--b1\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nwhisper-1\r\n"
                + "--b1\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.wav\"\r\nContent-Type: audio/wav\r\n\r\n"
                + "RIFF--b1x\r\n--b1--\r\n").utf8)
        let form = try MultipartForm.parse(body, boundary: "b1")
        #expect(form.parts.map(\.name) == ["model", "file"])
        #expect(form["file"]?.text == "RIFF--b1x" && form["file"]?.contentType == "audio/wav")
        #expect(MultipartForm.boundary(ofContentType: "multipart/form-data; boundary=\"b1\"") == "b1")
        #expect(MultipartForm.boundary(ofContentType: "application/json") == nil)
    }

    @Test func malformedBodiesAreA400() {
        for body in ["", "--b1\r\nname\r\n", "--b1\r\nContent-Disposition: form-data\r\n\r\nx\r\n--b1--\r\n", "--b1\r\n\r\n\r\nx"] {
            #expect(throws: GatewayError.self) { try MultipartForm.parse(Array(body.utf8), boundary: "b1") }
        }
    }
}

@Suite struct AttemptFailureTests {
    let now: Int64 = 1_792_000_000_000  // 2026-10-15T...Z in unix ms

    @Test func retryAfterTakesSecondsAndHTTPDates() throws {
        #expect(AttemptFailure.retryAfter("2", unixMillis: now) == .seconds(2))
        #expect(AttemptFailure.retryAfter("0.25", unixMillis: now) == .milliseconds(250))
        #expect(AttemptFailure.retryAfter("-1", unixMillis: now) == nil)
        #expect(AttemptFailure.retryAfter("soon", unixMillis: now) == nil)
        // RFC 9110's example date, 1994-11-06T08:49:37Z = 784111777 s.
        let example: Int64 = 784_111_777_000
        #expect(AttemptFailure.retryAfter("Sun, 06 Nov 1994 08:49:37 GMT", unixMillis: example - 30_000) == .seconds(30))
        #expect(AttemptFailure.retryAfter("Sun, 06 Nov 1994 08:49:37 GMT", unixMillis: example + 5_000) == .zero)
        #expect(AttemptFailure.retryAfter("Thu, 01 Jan 2099 00:00:00 GMT", unixMillis: now) == AttemptFailure.maxRetryAfter)
        #expect(AttemptFailure.retryAfter("Sun, 06 Nov 1994 08:49:37 PST", unixMillis: now) == nil)
        // A leap day.
        #expect(AttemptFailure.retryAfter("Thu, 29 Feb 2024 00:00:10 GMT", unixMillis: 1_709_164_800_000) == .seconds(10))
    }

    @Test func anUpstreams429WithAnHTTPDateKeepsTheDeploymentOutThatLong() throws {
        let failure = try #require(
            AttemptFailure(
                UpstreamStatus(status: 429, body: [], headers: [("retry-after", "Sun, 06 Nov 1994 08:50:37 GMT")]),
                provider: "p", unixMillis: 784_111_777_000))
        #expect(failure.retryable && failure.retryAfter == .seconds(60))
    }

    @Test func whatIsRetriedAndWhatIsNot() throws {
        for status in [429, 500, 502, 503, 401, 403] {
            #expect(AttemptFailure(UpstreamStatus(status: status, body: [], headers: []), provider: "p")?.retryable == true)
        }
        for status in [400, 404, 413, 422] {
            #expect(AttemptFailure(UpstreamStatus(status: status, body: [], headers: []), provider: "p")?.retryable == false)
        }
        #expect(AttemptFailure(CancellationError(), provider: "p") == nil)
        #expect(AttemptFailure(UpstreamError.overloaded, provider: "p")?.countsAgainstDeployment == false)
    }
}

@Suite struct InMemoryRateLimiterTests {
    let clock = ManualClock()

    func rule(rpm: Int? = nil, tpm: Int? = nil, concurrent: Int? = nil) -> RateLimitRule {
        RateLimitRule(scope: .key, name: "k", label: "this key", requestsPerMinute: rpm, tokensPerMinute: tpm, concurrent: concurrent)
    }

    @Test func aWindowFreesItsRoomAMinuteAfterTheSecondOfEachAdmission() throws {
        let limiter = InMemoryRateLimiter(clock: clock)
        _ = try limiter.admitNow([rule(rpm: 2)], tokens: 0)
        clock.advance(by: .seconds(10))
        _ = try limiter.admitNow([rule(rpm: 2)], tokens: 0)
        #expect(throws: RateLimitRefusal.self) { try limiter.admitNow([rule(rpm: 2)], tokens: 0) }
        // The first admission, in the limiter's first second, counts until 61 s.
        clock.advance(by: .milliseconds(50_999))
        do {
            _ = try limiter.admitNow([rule(rpm: 2)], tokens: 0)
            Issue.record("admitted before the first admission left the window")
        } catch {
            #expect(error.kind == .requests && error.wait == .milliseconds(1))
            #expect(error.error.headers.first { $0.name == "retry-after" }?.value == "1")
        }
        clock.advance(by: .milliseconds(1))
        _ = try limiter.admitNow([rule(rpm: 2)], tokens: 0)
    }

    @Test func memoryIsBoundedPerScopeWhateverTheTraffic() throws {
        var book = LimitBook()
        let key = LimitBook.Key(scope: .key, name: "k")
        // 100 000 admissions over two minutes: a window keeps at most 61 one-second buckets.
        for index in 0..<100_000 {
            guard case .success = book.admit([rule(rpm: 10_000_000, tpm: 1_000_000_000)], tokens: 7, id: UInt64(index), now: Int64(index) * 12 / 10)
            else {
                Issue.record("refused")
                return
            }
        }
        let entry = try #require(book.entries[key])
        #expect((entry.requests?.buckets.count ?? 0) <= 61 && (entry.tokens?.buckets.count ?? 0) <= 61)
        #expect(entry.requests?.total ?? 0 < 100_000)
        book.sweep(now: 10_000_000)
        #expect(book.entries.isEmpty)
    }

    @Test func aRefusalChangesNothingAndRevokingGivesEverythingBack() throws {
        let limiter = InMemoryRateLimiter(clock: clock)
        let account = RateLimitRule(scope: .account, name: "a", label: "this account", requestsPerMinute: 10)
        let grant = try limiter.admitNow([account, rule(concurrent: 1)], tokens: 0)
        #expect(grant.snapshot.requests?.remaining == 9)
        // The key's concurrency refuses; the account's window is not charged for it.
        #expect(throws: RateLimitRefusal.self) { try limiter.admitNow([account, rule(concurrent: 1)], tokens: 0) }
        limiter.revoke(grant)
        let again = try limiter.admitNow([account, rule(concurrent: 1)], tokens: 0)
        #expect(again.snapshot.requests?.remaining == 9)
    }

    @Test func tokensAreHeldAtTheEstimateAndSettledToWhatWasUsed() throws {
        let limiter = InMemoryRateLimiter(clock: clock)
        let grant = try limiter.admitNow([rule(tpm: 1000)], tokens: 900)
        #expect(throws: RateLimitRefusal.self) { try limiter.admitNow([rule(tpm: 1000)], tokens: 200) }
        limiter.finish(grant, tokens: 100)
        _ = try limiter.admitNow([rule(tpm: 1000)], tokens: 800)
    }

    @Test func theAdmissionFinishesOnceThroughThePort() async throws {
        let limiter = InMemoryRateLimiter(clock: clock)
        let port: any RateLimiting = limiter
        let admission = Admission(limiter: port, grant: try await port.admit([rule(concurrent: 1)], tokens: 0))
        admission.finish(tokens: nil)
        admission.revoke()  // no effect: already finished
        _ = try limiter.admitNow([rule(concurrent: 1)], tokens: 0)
    }
}

@Suite struct EndpointDescriptorTests {
    @Test func eachOperationSaysHowItIsReadValidatedAndMetered() throws {
        #expect(Endpoint.all.map(\.name).prefix(3) == ["chat", "completions", "embeddings"])
        #expect(Endpoint(name: "chat") == .chatCompletions && Endpoint(name: "pictures") == nil)
        #expect(Endpoint.named(inConfig: "images") == [.imageGenerations, .imageEdits, .imageVariations])
        #expect(Endpoint.imageEdits.body == .multipart && Endpoint.speech.body == .json)
        #expect(!Endpoint.speech.producesCompletion && Endpoint.transcriptions.output == .media)
        #expect(!Endpoint.embeddings.canStream && !Endpoint.embeddings.producesCompletion && !Endpoint.embeddings.stampsID)
        #expect(Endpoint.completions.prompt == .field("prompt") && Endpoint.chatCompletions.prompt == .messages)
        #expect(throws: GatewayError.self) { try Endpoint.completions.validate(["prompt": 3]) }
        try Endpoint.embeddings.validate(["input": .array(["a", "b"])])
        let body: JSONObject = ["model": "m", "prompt": "hello world"]
        #expect(TokenEstimate.prompt(of: body, endpoint: .completions) == 3)
    }
}

@Suite struct ChatTemplateTests {
    @Test func chatmlRendersWhatLlamaCppCounts() throws {
        let messages: JSONValue = .array([
            .object(["role": "system", "content": "Be brief."]),
            .object(["role": "user", "content": .array([.object(["type": "text", "text": "Hello"])])]),
        ])
        #expect(
            ChatTemplate.chatml.render(messages)
                == "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHello<|im_end|>\n<|im_start|>assistant\n")
        // An image cannot be rendered as text: nothing is counted, the estimate stands.
        let image: JSONValue = .array([.object(["role": "user", "content": .array([.object(["type": "image_url"])])])])
        #expect(ChatTemplate.chatml.render(image) == nil)
    }

    @Test func theEnginesCountWinsOverTheEstimateButNotOverReportedUsage() {
        var meter = Meter(promptEstimate: 2)
        meter.outputChunks = 8
        meter.counted = Usage(promptTokens: 15, completionTokens: 8)
        #expect(meter.billable(charge: true) == (15, 8, .engine))
        meter.reported = Usage(promptTokens: 16, completionTokens: 8)
        #expect(meter.billable(charge: true) == (16, 8, .reported))
    }
}
