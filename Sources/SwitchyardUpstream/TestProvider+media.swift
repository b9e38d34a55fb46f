import Foundation
import SwitchyardCore

/// The test model's images, speech and transcriptions, deterministic and offline: generated PNGs (a
/// pattern seeded by the prompt), a WAV tone whose length follows the input (one second per 15
/// characters, streamed in pieces one token delay apart), and a fixed transcription in every format,
/// as long as the uploaded audio.
extension TestProvider {
    static let transcript = "This is Switchyard's built-in test transcription."

    func media(_ request: UpstreamRequest, created: Int) async throws -> UpstreamResponse {
        let fields = Self.fields(request)
        switch request.endpoint {
        case .imageGenerations, .imageEdits, .imageVariations:
            return try await images(fields, created: created)
        case .speech:
            return speech(fields)
        case .transcriptions, .translations:
            return try await transcription(request, fields: fields)
        default:
            return UpstreamResponse(status: 404, body: .complete(Array(#"{"error":{"message":"not served"}}"#.utf8)))
        }
    }

    /// The request's fields, from its JSON body or its form's text parts.
    static func fields(_ request: UpstreamRequest) -> [String: String] {
        var fields: [String: String] = [:]
        switch request.payload {
        case .json(let body):
            for member in body.members {
                fields[member.key] = member.value.stringValue ?? member.value.serializedString()
            }
        case .multipart(let form):
            for part in form.parts where part.filename == nil { fields[part.name] = part.text }
        case .bytes:
            break
        }
        return fields
    }

    private func images(_ fields: [String: String], created: Int) async throws -> UpstreamResponse {
        let count = max(1, min(Int(fields["n"] ?? "1") ?? 1, 10))
        let side = fields["size"].flatMap { $0.split(separator: "x").first.flatMap { Int($0) } } ?? 64
        // Small, whatever size was asked: the pixels are not the point, the shape and the count are.
        let edge = max(8, min(side / 16, 128))
        let seed = (fields["prompt"] ?? "").unicodeScalars.reduce(0) { ($0 &* 31 &+ Int($1.value)) & 0xFFFF }
        try await Task.sleep(for: config.test.tokenDelay)
        let data: [JSONValue] = (0..<count).map { index in
            let png = TestMedia.png(width: edge, height: edge, seed: seed &+ index)
            let encoded = Base64.encode(png)
            if fields["response_format"] == "url" {
                return .object(["url": .string("data:image/png;base64," + encoded)])
            }
            return .object(["b64_json": .string(encoded), "revised_prompt": .string(fields["prompt"] ?? "")])
        }
        let body: JSONObject = ["created": .int(created), "data": .array(data)]
        return UpstreamResponse(
            status: 200, headers: [("content-type", "application/json")], body: .complete(body.serialized()))
    }

    private func speech(_ fields: [String: String]) -> UpstreamResponse {
        let input = fields["input"] ?? ""
        let seconds = max(0.5, min(Double(input.unicodeScalars.count) / 15, 60))
        let tone = WAVTone(seconds: seconds)
        let pieces = max(1, config.test.tokens)
        let delay = config.test.tokenDelay
        let events = EventPump.start { events, _ in
            for piece in tone.chunks(count: pieces) {
                try await Task.sleep(for: delay)
                events.yield(piece)
            }
        }
        return UpstreamResponse(status: 200, headers: [("content-type", "audio/wav")], body: .events(events))
    }

    private func transcription(_ request: UpstreamRequest, fields: [String: String]) async throws -> UpstreamResponse {
        var seconds = 0.0
        if case .multipart(let form) = request.payload, let file = form["file"] {
            seconds = AudioDuration.seconds(of: file.data) ?? 0
        }
        try await Task.sleep(for: config.test.tokenDelay)
        let text = Self.transcript
        let end = Self.timestamp(seconds, separator: ",")
        let (body, type): (String, String)
        switch fields["response_format"] ?? "json" {
        case "text": (body, type) = (text + "\n", "text/plain; charset=utf-8")
        case "srt": (body, type) = ("1\n00:00:00,000 --> \(end)\n\(text)\n\n", "text/plain; charset=utf-8")
        case "vtt":
            (body, type) = (
                "WEBVTT\n\n00:00:00.000 --> \(Self.timestamp(seconds, separator: "."))\n\(text)\n\n", "text/vtt; charset=utf-8"
            )
        case "verbose_json":
            let object: JSONObject = [
                "task": .string(request.endpoint == .translations ? "translate" : "transcribe"), "language": "english",
                "duration": .number(String(format: "%.3f", seconds)), "text": .string(text),
                "segments": .array([
                    .object([
                        "id": 0, "seek": 0, "start": .number("0.0"), "end": .number(String(format: "%.3f", seconds)),
                        "text": .string(text), "tokens": .array([]), "temperature": .number("0.0"),
                        "avg_logprob": .number("0.0"), "compression_ratio": .number("1.0"), "no_speech_prob": .number("0.0"),
                    ])
                ]),
            ]
            (body, type) = (object.serializedString(), "application/json")
        default:
            (body, type) = (JSONObject(["text": .string(text)]).serializedString(), "application/json")
        }
        return UpstreamResponse(status: 200, headers: [("content-type", type)], body: .complete(Array(body.utf8)))
    }

    /// `HH:MM:SS,mmm` (SRT) or `HH:MM:SS.mmm` (WebVTT).
    static func timestamp(_ seconds: Double, separator: String) -> String {
        let millis = Int((seconds * 1000).rounded())
        return String(
            format: "%02d:%02d:%02d%@%03d", millis / 3_600_000, (millis / 60_000) % 60, (millis / 1000) % 60, separator,
            millis % 1000)
    }
}
