import AsyncHTTPClient
import Foundation
import NIOCore
import SwitchyardCore
import SwitchyardServer
import Testing

/// Images, speech, transcriptions and uploads through the gateway, served by the built-in test model:
/// billed in their own units, streamed as they come, and uploads private to their account.
@Suite(.timeLimit(.minutes(2))) struct MediaTests {
    static func withMedia(_ config: inout Config, _: String) {
        config.providers.append(.init(name: "media", kind: .test, test: .init(tokens: 8, tokenDelay: .milliseconds(15))))
        config.models += [
            .init(
                name: "img", endpoints: Set(Endpoint.named(inConfig: "images") ?? []),
                deployments: [.init(provider: "media", model: "img")],
                price: .perImage(["1024x1024/standard": 40_000_000, "1024x1024/hd": 80_000_000, "*": 20_000_000])),
            .init(
                name: "tts", endpoints: [.speech], deployments: [.init(provider: "media", model: "tts")],
                price: .perMillionCharacters(15_000_000_000)),
            .init(
                name: "tts-seconds", endpoints: [.speech], deployments: [.init(provider: "media", model: "tts")],
                price: .perAudioSecond(1_000_000), maxSeconds: 60),
            .init(
                name: "whisper", endpoints: [.transcriptions, .translations],
                deployments: [.init(provider: "media", model: "whisper")], price: .perAudioSecond(100_000)),
        ]
        config.files = .init(maxBytes: 4096, retention: .seconds(3600))
        config.audio = .init(maxUploadBytes: 512 * 1024)
    }

    func multipart(_ gateway: GatewayHarness, _ path: String, _ form: MultipartForm, auth: String? = nil) async throws
        -> GatewayHarness.Reply
    {
        var request = HTTPClientRequest(url: gateway.base + path)
        request.method = .POST
        request.headers.add(name: "authorization", value: "Bearer \(auth ?? gateway.key)")
        let boundary = "test-boundary-\(UUID().uuidString)"
        request.headers.add(name: "content-type", value: "multipart/form-data; boundary=\(boundary)")
        request.body = .bytes(ByteBuffer(bytes: form.encoded(boundary: boundary)))
        return try await gateway.execute(request)
    }

    func row(_ gateway: GatewayHarness, api: String) async throws -> LedgerRow {
        _ = try await gateway.settled()
        return try #require(try await gateway.ledger().first { $0.open.api == api })
    }

    @Test func imagesAreBilledPerImageOfTheirSizeAndQuality() async throws {
        try await GatewayHarness.run(configure: Self.withMedia) { gateway in
            let before = try await gateway.account.balance
            let reply = try await gateway.post(
                "/v1/images/generations", #"{"model":"img","prompt":"a lighthouse","n":3,"quality":"hd"}"#)
            #expect(reply.status == 200)
            let data = try #require(reply.json["data"]?.arrayValue)
            #expect(data.count == 3)
            let png = try #require(Base64.decode(data[0]["b64_json"]?.stringValue ?? ""))
            #expect(MediaSniffer.sniff(png) == .png)
            let ledger = try await row(gateway, api: "images")
            #expect(ledger.units == 3 && ledger.unit == "image")
            #expect(ledger.cost == Money(micros: 240_000))
            #expect(ledger.promptTokens == 0 && ledger.completionTokens == 0)
            #expect(try await gateway.account.balance == before - Money(micros: 240_000))

            let edit = try await multipart(
                gateway, "/v1/images/edits",
                MultipartForm(parts: [
                    .init(name: "model", data: Array("img".utf8)), .init(name: "prompt", data: Array("add a boat".utf8)),
                    .init(name: "size", data: Array("512x512".utf8)),
                    .init(name: "image", filename: "in.png", contentType: "image/png", data: png),
                ]))
            #expect(edit.status == 200)
            #expect(edit.json["data"]?.arrayValue?.count == 1)
            let edits = try await row(gateway, api: "image_edits")
            #expect(edits.cost == Money(micros: 20_000))  // "*": 512x512 has no price of its own
        }
    }

    @Test func speechStreamsAudioAndIsBilledPerCharacter() async throws {
        try await GatewayHarness.run(configure: Self.withMedia) { gateway in
            let input = String(repeating: "Hello there. ", count: 6)
            var request = gateway.request(#"{"model":"tts","voice":"alloy","input":"\#(input)"}"#, path: "/v1/audio/speech")
            request.headers.add(name: "content-type", value: "application/json")
            let response = try await gateway.http.execute(request, timeout: .seconds(10))
            #expect(response.status.code == 200)
            #expect(response.headers.first(name: "content-type") == "audio/wav")
            var pieces = 0
            var audio: [UInt8] = []
            for try await piece in response.body {
                pieces += 1
                audio += Array(piece.readableBytesView)
            }
            #expect(pieces > 1, "the audio should arrive in pieces, as it is produced")
            let seconds = try #require(AudioDuration.seconds(of: audio))
            #expect(abs(seconds - Double(input.count) / 15) < 0.01)
            let ledger = try await row(gateway, api: "speech")
            #expect(ledger.units == Int64(input.count) && ledger.unit == "character")
            #expect(ledger.cost == Money(micros: Int64((Double(input.count) * 15).rounded())))
        }
    }

    @Test func aStoppedSpeechStreamIsBilledForTheAudioProduced() async throws {
        try await GatewayHarness.run(configure: Self.withMedia) { gateway in
            let input = String(repeating: "word ", count: 60)  // 20 s of audio in 8 pieces, 15 ms apart
            var request = gateway.request(
                #"{"model":"tts-seconds","input":"\#(input)","voice":"alloy","response_format":"wav"}"#,
                path: "/llm_api/\(gateway.key)/ivy/tts-seconds/v1/audio/speech")
            request.headers.remove(name: "authorization")
            let received = StopTests.OpenStream.Text()
            let task = Task {
                let response = try await gateway.http.execute(request, timeout: .seconds(10))
                for try await piece in response.body { received.value.withLock { $0 += String(piece.readableBytes) + "," } }
            }
            let deadline = ContinuousClock.now + .seconds(5)
            while received.value.withLock({ $0.split(separator: ",").count }) < 2 {
                guard ContinuousClock.now < deadline else { throw CancellationError() }
                try await Task.sleep(for: .milliseconds(2))
            }
            let stopped = try await gateway.get("/llm_api/suspend_current_generate?openid=\(gateway.key)&userid=ivy", auth: nil)
            #expect(stopped.json["stopped"] == 1)
            try? await task.value
            let ledger = try await row(gateway, api: "speech")
            #expect(ledger.status == "cancelled")
            let billedMillis = try #require(ledger.units)
            #expect(billedMillis > 0 && billedMillis < 20_000, "billed \(billedMillis) ms of 20 000")
            #expect(ledger.cost == Money(micros: billedMillis))
        }
    }

    @Test func everyTranscriptionFormatIsBilledForTheUploadedAudio() async throws {
        try await GatewayHarness.run(configure: Self.withMedia) { gateway in
            let wav = WAVTone(seconds: 3.0, sampleRate: 8000).file
            var costs: [Money] = []
            for format in ["json", "verbose_json", "text", "srt", "vtt"] {
                let reply = try await multipart(
                    gateway, "/v1/audio/transcriptions",
                    MultipartForm(parts: [
                        .init(name: "model", data: Array("whisper".utf8)),
                        .init(name: "response_format", data: Array(format.utf8)),
                        .init(name: "file", filename: "a.wav", contentType: "audio/wav", data: wav),
                    ]))
                #expect(reply.status == 200, "\(format): \(reply.text)")
                #expect(reply.text.contains("test transcription"))
                if format == "srt" { #expect(reply.text.contains("00:00:03,000")) }
                _ = try await gateway.settled()
                let row = try #require(try await gateway.ledger().first)
                #expect(row.units == 3000 && row.unit == "audio_ms", "\(format)")
                costs.append(row.cost)
            }
            #expect(costs == Array(repeating: Money(micros: 300), count: 5))
            let tooBig = try await multipart(
                gateway, "/v1/audio/transcriptions",
                MultipartForm(parts: [
                    .init(name: "model", data: Array("whisper".utf8)),
                    .init(name: "file", filename: "big.wav", data: WAVTone(seconds: 20).file),
                ]))
            #expect(tooBig.status == 413)
        }
    }

    @Test func uploadsArePrivateSniffedBoundedAndBecomeDataURLs() async throws {
        try await GatewayHarness.run(configure: Self.withMedia) { gateway in
            let png = TestMedia.png(width: 4, height: 4, seed: 7)
            func upload(_ data: [UInt8], name: String, purpose: String = "vision", auth: String? = nil) async throws
                -> GatewayHarness.Reply
            {
                try await multipart(
                    gateway, "/v1/files",
                    MultipartForm(parts: [
                        .init(name: "purpose", data: Array(purpose.utf8)),
                        .init(name: "file", filename: name, contentType: "text/plain", data: data),
                    ]), auth: auth)
            }
            let created = try await upload(png, name: "notes.txt")
            #expect(created.status == 200)
            let id = try #require(created.json["id"]?.stringValue)
            #expect(created.json["bytes"]?.intValue == png.count && created.json["purpose"] == "vision")
            let text = try await upload(Array("just text".utf8), name: "cat.png")
            #expect(text.status == 400 && text.json["error"]?["code"] == "invalid_file_type")
            #expect(try await upload(Array("just text".utf8), name: "n.txt", purpose: "user_data").status == 200)
            let big = try await upload(png + [UInt8](repeating: 0, count: 5000), name: "big.png")
            #expect(big.status == 413)
            #expect(try await gateway.get("/v1/files").json["data"]?.arrayValue?.count == 2)
            let content = try await gateway.get("/v1/files/\(id)/content")
            #expect(content.body == png && content.header("content-type") == "image/png")

            let other = try await Accounts(store: gateway.store).createAccount(
                id: "o-\(UUID().uuidString.prefix(6))", name: "o", balance: Money(micros: 100_000_000))
            let otherKey = try await Accounts(store: gateway.store).createKey(
                accountID: other.id, label: "", models: nil, expiresAt: nil
            ).secret
            #expect(try await gateway.get("/v1/files/\(id)", auth: otherKey).status == 404)
            #expect(try await gateway.get("/v1/files/\(id)/content", auth: otherKey).status == 404)
            #expect(try await gateway.post("/v1/files/\(id)", "", auth: otherKey, method: .DELETE).status == 404)
            let vision = #"{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"see"},{"type":"image_url","image_url":{"url":"\#(id)"}}]}]}"#
            let stolen = try await gateway.post("/v1/chat/completions", vision, auth: otherKey)
            #expect(stolen.status == 404)
            #expect(gateway.upstream.requests.isEmpty)

            let seen = try await gateway.post("/v1/chat/completions", vision)
            #expect(seen.status == 200)
            let url = gateway.lastUpstreamBody["messages"]?.arrayValue?.first?["content"]?.arrayValue?[1]["image_url"]?["url"]
            #expect(url?.stringValue == "data:image/png;base64," + Base64.encode(png))

            #expect(try await gateway.post("/v1/files/\(id)", "", method: .DELETE).json["deleted"] == true)
            #expect(try await gateway.get("/v1/files/\(id)").status == 404)
        }
    }

    @Test func anAccountKeepsABoundedNumberOfUploads() async throws {
        try await GatewayHarness.run(configure: { config, id in
            Self.withMedia(&config, id)
            config.files.maxPerAccount = 2
        }) { gateway in
            var statuses: [Int] = []
            for index in 0..<3 {
                let reply = try await multipart(
                    gateway, "/v1/files",
                    MultipartForm(parts: [
                        .init(name: "purpose", data: Array("vision".utf8)),
                        .init(name: "file", filename: "\(index).png", data: TestMedia.png(width: 2, height: 2, seed: index)),
                    ]))
                statuses.append(reply.status)
                if reply.status == 429 { #expect(reply.json["error"]?["code"] == "too_many_files") }
            }
            #expect(statuses == [200, 200, 429])
        }
    }

    @Test func uploadsExpireAfterTheirRetention() async throws {
        let clock = ManualClock()
        try await GatewayHarness.run(clock: clock, configure: Self.withMedia) { gateway in
            let reply = try await multipart(
                gateway, "/v1/files",
                MultipartForm(parts: [
                    .init(name: "purpose", data: Array("vision".utf8)),
                    .init(name: "expires_after[anchor]", data: Array("created_at".utf8)),
                    .init(name: "expires_after[seconds]", data: Array("600".utf8)),
                    .init(name: "file", filename: "a.png", data: TestMedia.png(width: 2, height: 2, seed: 1)),
                ]))
            let id = try #require(reply.json["id"]?.stringValue)
            #expect(reply.json["expires_at"]?.intValue == (reply.json["created_at"]?.intValue ?? 0) + 600)
            clock.advance(by: .seconds(599))
            #expect(try await gateway.get("/v1/files/\(id)").status == 200)
            clock.advance(by: .seconds(2))
            #expect(try await gateway.get("/v1/files/\(id)").status == 404)
            #expect(try await gateway.store.deleteExpiredFiles(now: clock.unixSeconds) == 1)
        }
    }
}
