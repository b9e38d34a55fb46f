import Hummingbird
import Logging
import NIOCore
import SwitchyardCore

/// One attempt at one deployment for a media request (images, speech, transcription): the answer is
/// relayed as the upstream gives it — a whole body of any type (JSON, text, SRT, audio), its
/// server-sent events, or audio bytes as they arrive — and metered in the units the model's price
/// counts (`MediaUsage`): images returned, the input's characters once audio began, seconds of audio
/// transcribed (the upstream's own figure, else measured from the upload) or produced (measured from
/// the bytes relayed). Every ending is an event of the request's lifecycle, as for chat.
struct MediaExchange: UpstreamAttempt {
    let plan: RelayPlan
    let inference: InferenceRequest
    let provider: any Provider
    let ticket: BillingTicket
    let client: Signal?
    let stop: Signal
    let logger: Logger
    let answered: @Sendable () -> Void
    let price: Price
    /// The model's `max_seconds`: the most audio billed when it cannot be measured.
    let maxSeconds: Int

    var endpoint: Endpoint { inference.endpoint }

    enum Opening: Sendable {
        case whole([UInt8], contentType: String)
        case events(UpstreamEvents, first: [UInt8]?, contentType: String)
    }

    func run() async throws -> Response {
        let opening: Opening
        do {
            opening = try await open()
        } catch {
            return try await perform(ticket.handle(event(for: error, charge: false)))
        }
        _ = ticket.handle(.upstreamAnswered)
        answered()
        switch opening {
        case .whole(let bytes, let contentType):
            return try await finishWhole(bytes, contentType: contentType)
        case .events(let events, let first, let contentType):
            _ = ticket.handle(.committed)
            let exchange = self
            let isSSE = contentType.lowercased().hasPrefix("text/event-stream")
            return Response(
                status: .ok,
                headers: [.contentType: contentType, .cacheControl: "no-cache"],
                body: ResponseBody { writer in
                    try await exchange.pipe(events, first: first, isSSE: isSSE, into: &writer)
                    try await writer.finish(nil)
                })
        }
    }

    func interrupted(by error: any Error) async throws -> Response {
        try await perform(ticket.handle(event(for: error, charge: false)))
    }

    private func open() async throws -> Opening {
        let provider = self.provider
        let request = plan.upstream
        let logger = self.logger
        try await prepareProvider()
        ticket.markSent()
        return try await untilSignalled([client, stop]) {
            let upstream = try await provider.send(request, logger: logger)
            let contentType = upstream.headers.first { $0.name == "content-type" }?.value ?? "application/json"
            switch upstream.body {
            case .complete(let body) where !(200..<300).contains(upstream.status):
                throw UpstreamStatus(status: upstream.status, body: body, headers: upstream.headers)
            case .complete(let bytes):
                return .whole(bytes, contentType: contentType)
            case .events(let events):
                do {
                    return .events(events, first: try await events.next(), contentType: contentType)
                } catch {
                    events.cancel()
                    throw error
                }
            }
        }
    }

    /// An action before anything was written to the client.
    private func perform(_ action: RequestLifecycle.Action) async throws -> Response {
        switch action {
        case .tryNext(let failure):
            throw Exchange.Retry(failure: failure)
        case .fail(let error, let outcome):
            await ticket.settle(outcome)
            throw error
        case .finishStopped(let outcome), .abandon(let outcome), .finish(let outcome), .finishWithError(_, let outcome):
            // A media answer stopped before it began has nothing to show: the stop is answered as a
            // cancelled request, unbilled.
            await ticket.settle(outcome)
            throw GatewayError(
                status: 499, message: "The request was stopped before the upstream answered.",
                type: "invalid_request_error", code: "cancelled")
        case .none, .attempt:
            throw GatewayError.internalError
        }
    }

    // MARK: whole answers

    private func finishWhole(_ bytes: [UInt8], contentType: String) async throws -> Response {
        let object = (try? JSONValue.parse(bytes))?.objectValue
        var media = inference.mediaEstimate ?? .none
        var usage: Usage?
        switch endpoint {
        case .imageGenerations, .imageEdits, .imageVariations:
            media.images = object?["data"]?.arrayValue?.count ?? 0
            usage = Self.tokenUsage(object?["usage"])
        case .transcriptions, .translations:
            if let seconds = Self.reportedSeconds(object) { media.audioMillis = AudioDuration.millis(seconds) }
            if media.audioMillis == 0 { media.audioMillis = Int64(maxSeconds) * 1000 }
            usage = Self.tokenUsage(object?["usage"])
        case .speech:
            if bytes.isEmpty { media.characters = 0 }
            media.audioMillis = min(
                Self.audioMillis(bytes, format: inference.body["response_format"]?.stringValue), Int64(maxSeconds) * 1000)
        default:
            break
        }
        ticket.record(usage: usage, outputChunks: 0, outputBytes: bytes.count)
        ticket.recordMedia(media)
        if case .finish(let outcome) = ticket.handle(.upstreamEnded(finishReason: "stop", charge: true)) {
            await ticket.settle(outcome)
        }
        return Response(
            status: .ok, headers: [.contentType: contentType], body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
    }

    /// `usage` in tokens, as image models and token-priced transcription models report it.
    static func tokenUsage(_ value: JSONValue?) -> Usage? {
        guard let value, value["type"]?.stringValue != "duration", let input = value["input_tokens"]?.intValue else {
            return nil
        }
        return Usage(promptTokens: input, completionTokens: value["output_tokens"]?.intValue ?? 0)
    }

    /// Seconds of audio the upstream says it transcribed: `usage: {type: duration, seconds}`, or a
    /// verbose answer's `duration`.
    static func reportedSeconds(_ object: JSONObject?) -> Double? {
        if let usage = object?["usage"], usage["type"]?.stringValue == "duration",
            case .number(let text)? = usage["seconds"], let seconds = Double(text)
        {
            return seconds
        }
        if case .number(let text)? = object?["duration"], let seconds = Double(text) { return seconds }
        return nil
    }

    /// Milliseconds of audio in `bytes` of speech in `format` (`pcm` is 24 kHz 16-bit mono, as OpenAI
    /// sends it); measured from the file's own headers otherwise.
    static func audioMillis(_ bytes: [UInt8], format: String?) -> Int64 {
        let seconds = format == "pcm" ? AudioDuration.pcmSeconds(byteCount: bytes.count) : AudioDuration.seconds(of: bytes)
        return seconds.map(AudioDuration.millis) ?? 0
    }

    // MARK: streams

    /// Relays a stream as it arrives: server-sent events re-framed with their `type` as the event
    /// name, or raw audio pieces. Settles for what reached the client, whatever ends it.
    func pipe(_ events: UpstreamEvents, first: [UInt8]?, isSSE: Bool, into writer: inout any ResponseBodyWriter)
        async throws
    {
        let registrations = [client, stop].compactMap { $0?.onFire { events.cancel() } }
        defer { registrations.forEach { $0.cancel() } }
        var meter = StreamMeter(
            endpoint: endpoint, estimate: inference.mediaEstimate ?? .none, isSSE: isSSE, maxMillis: Int64(maxSeconds) * 1000)
        var next = first
        var ending: RequestLifecycle.Event?
        do {
            while let payload = next {
                let bytes = meter.add(payload)
                ticket.record(usage: meter.usage, outputChunks: meter.pieces, outputBytes: meter.bytes)
                ticket.recordMedia(meter.media(format: inference.body["response_format"]?.stringValue))
                if let error = meter.upstreamError {
                    try? await writer.write(ByteBuffer(bytes: bytes))
                    ending = .upstreamErrorEvent(error, provider: providerName, charge: meter.pieces > 0)
                    break
                }
                try await writer.write(ByteBuffer(bytes: bytes))
                next = try await events.next()
            }
        } catch {
            ending = event(for: error, charge: meter.pieces > 0, committed: true)
        }
        ticket.recordMedia(meter.media(format: inference.body["response_format"]?.stringValue))
        let action = ticket.handle(ending ?? .upstreamEnded(finishReason: "stop", charge: meter.pieces > 0))
        switch action {
        case .finish(let outcome), .finishStopped(let outcome):
            events.cancel()
            await ticket.settle(outcome)
        case .finishWithError(let error, let outcome):
            events.cancel()
            // The upstream's own error event went out already; otherwise say so in the stream. Raw
            // audio has no way to say it: the body is cut (no final chunk), never ended cleanly.
            if isSSE, meter.upstreamError == nil { try? await writer.write(ByteBuffer(bytes: SSE.errorEvent(error))) }
            await ticket.settle(outcome)
            if !isSSE { throw UpstreamError.closedEarly }
        case .abandon(let outcome), .fail(_, let outcome):
            events.cancel()
            await ticket.settle(outcome)
            throw CancellationError()
        case .none, .attempt, .tryNext:
            events.cancel()
        }
    }
}

/// What a media stream has delivered: its pieces and bytes, the images completed, the audio produced
/// (speech bytes, or `speech.audio.delta` events), the usage reported, an error event.
struct StreamMeter {
    let endpoint: Endpoint
    let estimate: MediaUsage
    let isSSE: Bool
    /// `max_seconds`: the most audio a speech request is billed.
    let maxMillis: Int64
    private(set) var pieces = 0
    private(set) var bytes = 0
    private(set) var images = 0
    private(set) var usage: Usage?
    private(set) var reportedSeconds: Double?
    private(set) var upstreamError: JSONObject?
    /// Speech: the audio relayed, to be measured (bounded: a measurement needs the header and the length).
    private var audio: [UInt8] = []
    private var audioBytes = 0

    init(endpoint: Endpoint, estimate: MediaUsage, isSSE: Bool, maxMillis: Int64) {
        self.endpoint = endpoint
        self.estimate = estimate
        self.isSSE = isSSE
        self.maxMillis = maxMillis
    }

    /// Speech audio kept to be measured: formats other than WAV and PCM are measured whole (MP3
    /// frames, Ogg granules), up to this much; past it the bill is `max_seconds`.
    static let audioLimit = 64 * 1024 * 1024

    /// The bytes to write for one piece.
    mutating func add(_ payload: [UInt8]) -> [UInt8] {
        pieces += 1
        guard isSSE else {
            bytes += payload.count
            addAudio(payload)
            return payload
        }
        guard case .object(let event)? = try? JSONValue.parse(payload) else {
            bytes += payload.count
            return SSE.framed(payload, name: nil)
        }
        let type = event["type"]?.stringValue ?? ""
        if let error = event["error"]?.objectValue, type == "error" || event["type"] == nil { upstreamError = error }
        if type.hasSuffix(".completed") && type.hasPrefix("image_") { images += 1 }
        if let reported = MediaExchange.tokenUsage(event["usage"]) { usage = reported }
        if let usage = event["usage"], usage["type"]?.stringValue == "duration",
            case .number(let text)? = usage["seconds"]
        {
            reportedSeconds = Double(text)
        }
        if type == "speech.audio.delta", let audio = event["audio"]?.stringValue {
            addAudio(Base64.decode(audio) ?? [])
        }
        bytes += payload.count
        return SSE.framed(payload, name: type.isEmpty ? nil : type)
    }

    private mutating func addAudio(_ piece: [UInt8]) {
        audioBytes += piece.count
        guard endpoint == .speech else { return }
        if audio.count < Self.audioLimit { audio.append(contentsOf: piece.prefix(Self.audioLimit - audio.count)) }
    }

    func media(format: String?) -> MediaUsage {
        var media = estimate
        switch endpoint {
        case .imageGenerations, .imageEdits, .imageVariations:
            media.images = images
        case .speech:
            media.characters = pieces > 0 ? estimate.characters : 0
            media.audioMillis = speechMillis(format: format)
        case .transcriptions, .translations:
            if let reportedSeconds { media.audioMillis = AudioDuration.millis(reportedSeconds) }
            if media.audioMillis == 0 { media.audioMillis = maxMillis }
        default:
            break
        }
        return media
    }

    /// Audio produced so far: PCM (24 kHz, 16-bit mono) and WAV by their length; other formats from
    /// their own headers when the relayed start can say (else nothing is measured).
    private func speechMillis(format: String?) -> Int64 {
        guard audioBytes > 0 else { return 0 }
        let seconds: Double?
        if format == "pcm" {
            seconds = AudioDuration.pcmSeconds(byteCount: audioBytes)
        } else if audioBytes > audio.count {
            seconds = AudioDuration.wavSeconds(prefix: audio, totalByteCount: audioBytes)
        } else {
            seconds = AudioDuration.seconds(of: audio)
        }
        // Audio that cannot be measured is billed the most it may be: `max_seconds`.
        return min(seconds.map(AudioDuration.millis) ?? maxMillis, maxMillis)
    }
}

extension SSE {
    /// `event: NAME` (when named) and `data: PAYLOAD`, the payload as it came.
    static func framed(_ payload: [UInt8], name: String?) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(payload.count + 32)
        if let name {
            out.append(contentsOf: "event: ".utf8)
            out.append(contentsOf: name.utf8)
            out.append(0x0A)
        }
        out.append(contentsOf: "data: ".utf8)
        out.append(contentsOf: payload)
        out.append(contentsOf: [0x0A, 0x0A])
        return out
    }
}
