/// How long a WAV, MP3, FLAC or Ogg file plays, read from its own headers, for per-second billing when
/// an upstream does not report a duration (a `text`/`srt`/`vtt` transcription must not go unbilled).
///
/// Exact wherever the format states it: WAV data bytes ÷ block align, FLAC STREAMINFO samples, the Ogg
/// granule position, an MP3 Xing/Info/VBRI frame count, or else the sum of every MP3 frame's samples.
/// Never traps on malformed input; everything unreadable is nil. Work is one linear pass at most.
public enum AudioDuration {
    /// The duration in seconds, or nil when the bytes are not a measurable WAV, MP3, FLAC or Ogg file
    /// (the format is sniffed from the bytes, as for uploads).
    public static func seconds(of bytes: [UInt8]) -> Double? {
        let result: Double?
        switch MediaSniffer.sniff(bytes) {
        case .wav?: result = wavSeconds(prefix: bytes, totalByteCount: bytes.count)
        case .mp3?: result = MP3Duration.seconds(MediaBytes(bytes))
        case .flac?: result = flacSeconds(MediaBytes(bytes))
        case .ogg?: result = OggDuration.seconds(MediaBytes(bytes))
        default: result = nil
        }
        // A header may claim anything (a sample rate of 1, a granule of Int64.max): no real upload
        // plays for more than `longest`, so such a claim is unreadable, not a bill of centuries.
        guard let result, result.isFinite, result >= 0, result <= longest else { return nil }
        return result
    }

    /// The longest audio believed (about 11.6 days).
    public static let longest: Double = 1_000_000

    /// Seconds as whole milliseconds, rounded up; 0 for what is not a sane duration.
    public static func millis(_ seconds: Double) -> Int64 {
        guard seconds.isFinite, seconds > 0 else { return 0 }
        return Int64((min(seconds, longest) * 1000).rounded(.up))
    }

    /// A WAV's duration from its first bytes and its total length, so a relayed stream can be measured
    /// without keeping it: `prefix` must reach past the `fmt ` chunk and the `data` chunk's header.
    ///
    /// The data size is the `data` chunk's (RF64: the `ds64` chunk's), clamped to the bytes there are,
    /// so a stopped stream counts only the audio it delivered; 0 or 0xFFFFFFFF (streaming writers that
    /// cannot seek back) means "to the end". PCM, float, A-law and µ-law (also inside
    /// WAVE_FORMAT_EXTENSIBLE) count whole frames of `block align` bytes; other codecs use the `fact`
    /// chunk's sample count, else the byte rate.
    public static func wavSeconds(prefix bytes: [UInt8], totalByteCount: Int) -> Double? {
        let data = MediaBytes(bytes)
        let total = max(totalByteCount, bytes.count)
        let isRF64 = data.matches("RF64", at: 0) || data.matches("BW64", at: 0)
        guard data.matches("RIFF", at: 0) || isRF64, data.matches("WAVE", at: 8) else { return nil }
        var format: WAVFormat?
        var audioBytes: Int?
        var factFrames: Int?
        var ds64DataSize: UInt64?
        var position = 12
        while format == nil || audioBytes == nil, let declared = data.u32le(position + 4) {
            let body = position + 8
            var size = declared
            if data.matches("fmt ", at: position) {
                format = WAVFormat(data, at: body, size: declared)
            } else if data.matches("ds64", at: position) {
                ds64DataSize = data.u64le(body + 8)
            } else if data.matches("fact", at: position) {
                factFrames = data.u32le(body)
            } else if data.matches("data", at: position) {
                if isRF64, declared == 0xFFFF_FFFF, let big = ds64DataSize {
                    size = Int(clamping: big)
                } else if declared == 0 || declared == 0xFFFF_FFFF {
                    size = total - body
                }
                size = max(0, min(size, total - body))
                audioBytes = size
            }
            // Chunks are padded to even sizes; some writers forget the pad byte, so look at both.
            var next = body + size + (size & 1)
            if size & 1 == 1, !data.looksLikeChunkID(at: next), data.looksLikeChunkID(at: next - 1) { next -= 1 }
            position = next
        }
        guard let format, let audioBytes, format.channels > 0, format.sampleRate > 0 else { return nil }
        if format.countsFrames {
            let align = format.blockAlign > 0 ? format.blockAlign : format.channels * ((format.bitsPerSample + 7) / 8)
            guard align > 0 else { return nil }
            return Double(audioBytes / align) / Double(format.sampleRate)
        }
        if let factFrames { return Double(factFrames) / Double(format.sampleRate) }
        guard format.byteRate > 0 else { return nil }
        return Double(audioBytes) / Double(format.byteRate)
    }

    /// The duration of raw PCM (`response_format: pcm` is 24 kHz, 16-bit, mono): whole frames only.
    public static func pcmSeconds(
        byteCount: Int, sampleRate: Int = 24000, channels: Int = 1, bytesPerSample: Int = 2
    ) -> Double {
        guard byteCount > 0, sampleRate > 0, channels > 0, bytesPerSample > 0 else { return 0 }
        let (frameBytes, overflow) = channels.multipliedReportingOverflow(by: bytesPerSample)
        guard !overflow else { return 0 }
        return Double(byteCount / frameBytes) / Double(sampleRate)
    }

    /// FLAC (xiph.org/flac/format): STREAMINFO is the first metadata block; it holds a 20-bit sample
    /// rate and a 36-bit total sample count, where 0 means "unknown" (then nil). An ID3v2 tag before
    /// `fLaC`, which some taggers write, is skipped.
    static func flacSeconds(_ data: MediaBytes) -> Double? {
        guard let start = ID3v2.end(in: data, from: 0), data.matches("fLaC", at: start),
            let blockType = data.u8(start + 4), blockType & 0x7F == 0
        else { return nil }
        return StreamInfo(data, at: start + 8, length: data.u24be(start + 5) ?? 0)?.seconds
    }
}

/// The fields of a WAV `fmt ` chunk that a duration needs.
struct WAVFormat {
    let channels: Int
    let sampleRate: Int
    let byteRate: Int
    let blockAlign: Int
    let bitsPerSample: Int
    /// PCM, IEEE float, A-law or µ-law: one frame of `blockAlign` bytes per sample instant.
    let countsFrames: Bool

    /// The tail of the KSDATAFORMAT_SUBTYPE_* GUIDs after their 16-bit format tag.
    private static let subtypeSuffix: [UInt8] = [
        0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xAA, 0x00, 0x38, 0x9B, 0x71,
    ]

    init?(_ data: MediaBytes, at body: Int, size: Int) {
        guard size >= 16, let tag = data.u16le(body), let channels = data.u16le(body + 2),
            let sampleRate = data.u32le(body + 4), let byteRate = data.u32le(body + 8),
            let blockAlign = data.u16le(body + 12), let bits = data.u16le(body + 14)
        else { return nil }
        var effective = tag
        if tag == 0xFFFE, size >= 40, let subtype = data.u16le(body + 24),
            data.matches(Self.subtypeSuffix, at: body + 26)
        {
            effective = subtype
        }
        self.channels = channels
        self.sampleRate = sampleRate
        self.byteRate = byteRate
        self.blockAlign = blockAlign
        self.bitsPerSample = bits
        self.countsFrames = [1, 3, 6, 7].contains(effective)
    }
}

/// A FLAC STREAMINFO block (native `fLaC` or inside Ogg FLAC).
struct StreamInfo {
    let sampleRate: Int
    let totalSamples: UInt64

    init?(_ data: MediaBytes, at offset: Int, length: Int) {
        guard length >= 34, data.has(34, at: offset), let b10 = data.u8(offset + 10),
            let b11 = data.u8(offset + 11), let b12 = data.u8(offset + 12), let b13 = data.u8(offset + 13),
            let low = data.u32be(offset + 14)
        else { return nil }
        sampleRate = Int(b10) << 12 | Int(b11) << 4 | Int(b12) >> 4
        totalSamples = UInt64(b13 & 0x0F) << 32 | UInt64(low)
    }

    var seconds: Double? {
        guard sampleRate > 0, totalSamples > 0 else { return nil }
        return Double(totalSamples) / Double(sampleRate)
    }
}

/// One MPEG-1/2/2.5 audio frame header (ISO 11172-3, 13818-3): 11 sync bits, version, layer, bitrate,
/// sample rate and padding. Free-format (bitrate index 0) and reserved values are refused.
struct MPEGFrameHeader: Equatable {
    enum Version { case mpeg1, mpeg2, mpeg25 }

    let version: Version
    let layer: Int
    let bitrate: Int
    let sampleRate: Int
    let padding: Bool
    let isMono: Bool

    /// kbit/s for bitrate indexes 1…14: MPEG-1 layers I, II, III, then MPEG-2/2.5 layer I, layers II/III.
    private static let bitrates: [[Int]] = [
        [32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448],
        [32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384],
        [32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320],
        [32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256],
        [8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160],
    ]
    private static let sampleRates = [44100, 48000, 32000]

    init?(in data: MediaBytes, at offset: Int) {
        guard let b0 = data.u8(offset), let b1 = data.u8(offset + 1), let b2 = data.u8(offset + 2),
            let b3 = data.u8(offset + 3), b0 == 0xFF, b1 & 0xE0 == 0xE0
        else { return nil }
        let versionBits = (b1 >> 3) & 3
        let layerBits = (b1 >> 1) & 3
        let bitrateIndex = Int(b2 >> 4)
        let rateIndex = Int((b2 >> 2) & 3)
        guard versionBits != 1, layerBits != 0, (1...14).contains(bitrateIndex), rateIndex != 3 else { return nil }
        version = versionBits == 3 ? .mpeg1 : versionBits == 2 ? .mpeg2 : .mpeg25
        layer = 4 - Int(layerBits)
        let table = version == .mpeg1 ? layer - 1 : (layer == 1 ? 3 : 4)
        bitrate = Self.bitrates[table][bitrateIndex - 1] * 1000
        let divisor = version == .mpeg1 ? 1 : version == .mpeg2 ? 2 : 4
        sampleRate = Self.sampleRates[rateIndex] / divisor
        padding = b2 & 0x02 != 0
        isMono = b3 >> 6 == 3
    }

    var samplesPerFrame: Int {
        layer == 1 ? 384 : (layer == 3 && version != .mpeg1 ? 576 : 1152)
    }

    /// The frame's length in bytes, header included: layer I counts 4-byte slots.
    var frameLength: Int {
        let pad = padding ? 1 : 0
        if layer == 1 { return (12 * bitrate / sampleRate + pad) * 4 }
        return samplesPerFrame / 8 * bitrate / sampleRate + pad
    }

    /// Layer III side information, between the header and a Xing/Info tag.
    var sideInfoLength: Int {
        version == .mpeg1 ? (isMono ? 17 : 32) : (isMono ? 9 : 17)
    }

    /// Whether `other` can be the next frame of the same stream (bitrate and padding may change).
    func continues(_ other: MPEGFrameHeader) -> Bool {
        version == other.version && layer == other.layer && sampleRate == other.sampleRate
    }

    /// Whether the frame at `offset` is followed by another frame of the stream or by a trailing tag.
    /// Not `strict`: the bytes may also stop before the next header; `strict`: they must end exactly.
    static func isConfirmed(
        _ header: MPEGFrameHeader, at offset: Int, in data: MediaBytes, end: Int? = nil, strict: Bool = false
    ) -> Bool {
        let end = end ?? data.count
        let next = offset + header.frameLength
        if next == end { return true }
        if next + 4 > end { return !strict }
        if let following = MPEGFrameHeader(in: data, at: next), following.continues(header) { return true }
        return MP3Duration.isTrailer(at: next, in: data)
    }
}

/// MP3 durations: after any ID3v2 tags, a Xing/Info or VBRI header in the first frame gives the frame
/// count; otherwise every frame is walked (resyncing over short junk) up to a trailing tag. The LAME
/// encoder delay and padding are not subtracted: billing counts the frames that were sent.
enum MP3Duration {
    /// How far past a bad spot to look for the next frame before giving up.
    static let resyncWindow = 65536

    static func seconds(_ data: MediaBytes) -> Double? {
        guard let start = ID3v2.end(in: data, from: 0) else { return nil }
        var end = data.count
        if end - 128 >= start, data.matches("TAG", at: end - 128) { end -= 128 }
        guard let first = firstFrame(in: data, from: start, end: end),
            let header = MPEGFrameHeader(in: data, at: first)
        else { return nil }
        let tag = vbrTag(of: header, at: first, in: data)
        if let frames = tag.frames {
            return Double(frames * header.samplesPerFrame) / Double(header.sampleRate)
        }
        var position = tag.present ? first + header.frameLength : first
        var samples = 0
        while position < end {
            if let frame = MPEGFrameHeader(in: data, at: position), frame.continues(header) {
                let next = position + frame.frameLength
                guard next <= end else { break }  // a truncated last frame does not play
                samples += frame.samplesPerFrame
                position = next
                continue
            }
            if isTrailer(at: position, in: data) { break }
            guard let next = resync(in: data, from: position + 1, end: end, like: header) else { break }
            position = next
        }
        guard samples > 0 else { return nil }
        return Double(samples) / Double(header.sampleRate)
    }

    /// The first frame: right after the tags, or else the first confirmed frame within the resync
    /// window after any zero padding (which taggers leave behind, sometimes a lot of it).
    static func firstFrame(in data: MediaBytes, from start: Int, end: Int) -> Int? {
        if start + 4 <= end, MPEGFrameHeader(in: data, at: start) != nil { return start }
        var position = start
        while position < end, data.u8(position) == 0 { position += 1 }
        return resync(in: data, from: position, end: end, like: nil)
    }

    /// The next frame at or after `start` (and within the window) that is confirmed by the frame after
    /// it, or by ending the audio exactly, and that continues `reference`'s stream when there is one.
    static func resync(in data: MediaBytes, from start: Int, end: Int, like reference: MPEGFrameHeader?) -> Int? {
        var position = start
        let limit = min(end - 3, start + resyncWindow)
        while position < limit {
            if let header = MPEGFrameHeader(in: data, at: position), reference.map(header.continues) ?? true,
                MPEGFrameHeader.isConfirmed(header, at: position, in: data, end: end, strict: true)
            {
                return position
            }
            position += 1
        }
        return nil
    }

    /// A Xing/Info (LAME, after the side information) or VBRI (Fraunhofer, at byte 36) tag in the first
    /// layer III frame, and the frame count it states (flag 0x1 for Xing). The tag frame holds no audio.
    static func vbrTag(
        of header: MPEGFrameHeader, at frame: Int, in data: MediaBytes
    ) -> (present: Bool, frames: Int?) {
        guard header.layer == 3 else { return (false, nil) }
        let frameEnd = frame + header.frameLength
        let xing = frame + 4 + header.sideInfoLength
        if data.matches("Xing", at: xing) || data.matches("Info", at: xing) {
            guard xing + 12 <= frameEnd, let flags = data.u32be(xing + 4), flags & 1 != 0,
                let frames = data.u32be(xing + 8), frames > 0
            else { return (true, nil) }
            return (true, frames)
        }
        let vbri = frame + 36
        if data.matches("VBRI", at: vbri) {
            guard vbri + 18 <= frameEnd, let frames = data.u32be(vbri + 14), frames > 0 else { return (true, nil) }
            return (true, frames)
        }
        return (false, nil)
    }

    /// ID3v1, APEv2, Lyrics3 or an appended ID3v2 tag: the audio has ended.
    static func isTrailer(at offset: Int, in data: MediaBytes) -> Bool {
        data.matches("TAG", at: offset) || data.matches("APETAGEX", at: offset)
            || data.matches("LYRICSBEGIN", at: offset) || data.matches("ID3", at: offset)
            || data.matches("3DI", at: offset)
    }
}

/// Ogg durations (RFC 3533): the granule position of a logical stream's last page over the sample rate
/// from its first (BOS) page — Vorbis (`\x01vorbis`), Opus (`OpusHead`: always 48 kHz, minus pre-skip;
/// RFC 7845), FLAC-in-Ogg (`\x7FFLAC`) and Speex. Page CRCs are not checked: a duration needs only the
/// headers, and a damaged page is skipped by searching for the next `OggS`. Chained files (one link
/// after another) add up; concurrent streams in a link (say, two audio tracks) count once, the longest.
/// A non-zero starting granule (RFC 7845 §4.5 start offset) is not subtracted.
enum OggDuration {
    struct Page {
        let flags: UInt8
        let granule: Int64
        let serial: Int
        let body: Int
        let bodyLength: Int
        var end: Int { body + bodyLength }
        var isBeginning: Bool { flags & 0x02 != 0 }
    }

    struct Stream {
        let sampleRate: Int
        let preSkip: Int
        var granule: Int64?

        var seconds: Double? {
            guard let granule else { return nil }
            return Double(max(0, granule - Int64(preSkip))) / Double(sampleRate)
        }
    }

    static func seconds(_ data: MediaBytes) -> Double? {
        var links: [Double] = []
        var streams: [Int: Stream] = [:]
        var previousWasBeginning = false
        var seenPage = false
        func closeLink() {
            if let longest = streams.values.compactMap(\.seconds).max() { links.append(longest) }
            streams = [:]
        }
        var position = 0
        while position < data.count {
            guard let page = page(in: data, at: position) else {
                guard let next = data.find("OggS", from: position + 1, before: data.count) else { break }
                position = next
                continue
            }
            if page.isBeginning {
                if seenPage, !previousWasBeginning { closeLink() }
                if let stream = identify(page, in: data) { streams[page.serial] = stream }
            }
            previousWasBeginning = page.isBeginning
            seenPage = true
            if page.granule >= 0, var stream = streams[page.serial] {
                stream.granule = page.granule
                streams[page.serial] = stream
            }
            position = page.end
        }
        closeLink()
        guard !links.isEmpty else { return nil }
        return links.reduce(0, +)
    }

    /// A whole page at `offset` (header, segment table and body all present), or nil.
    static func page(in data: MediaBytes, at offset: Int) -> Page? {
        guard data.matches("OggS", at: offset), data.u8(offset + 4) == 0, let flags = data.u8(offset + 5),
            let granule = data.u64le(offset + 6), let serial = data.u32le(offset + 14),
            let segments = data.u8(offset + 26), data.has(Int(segments), at: offset + 27)
        else { return nil }
        let table = offset + 27
        var length = 0
        for index in 0..<Int(segments) { length += Int(data.bytes[table + index]) }
        let body = table + Int(segments)
        guard data.has(length, at: body) else { return nil }
        return Page(flags: flags, granule: Int64(bitPattern: granule), serial: serial, body: body, bodyLength: length)
    }

    /// The audio codec of a BOS page's identification header, or nil (video, skeleton, unknown).
    static func identify(_ page: Page, in data: MediaBytes) -> Stream? {
        let body = page.body
        if page.bodyLength >= 30, data.matches([0x01], at: body), data.matches("vorbis", at: body + 1),
            let rate = data.u32le(body + 12), rate > 0
        {
            return Stream(sampleRate: rate, preSkip: 0)
        }
        if page.bodyLength >= 19, data.matches("OpusHead", at: body), let preSkip = data.u16le(body + 10) {
            return Stream(sampleRate: 48000, preSkip: preSkip)
        }
        if page.bodyLength >= 51, data.matches([0x7F], at: body), data.matches("FLAC", at: body + 1),
            data.matches("fLaC", at: body + 9),
            let info = StreamInfo(data, at: body + 17, length: data.u24be(body + 14) ?? 0), info.sampleRate > 0
        {
            return Stream(sampleRate: info.sampleRate, preSkip: 0)
        }
        if page.bodyLength >= 80, data.matches("Speex   ", at: body), let rate = data.u32le(body + 36), rate > 0 {
            return Stream(sampleRate: rate, preSkip: 0)
        }
        return nil
    }
}

extension MediaBytes {
    func u24be(_ offset: Int) -> Int? {
        guard has(3, at: offset) else { return nil }
        return Int(bytes[offset]) << 16 | Int(bytes[offset + 1]) << 8 | Int(bytes[offset + 2])
    }

    /// Four printable ASCII bytes, as RIFF chunk ids are.
    func looksLikeChunkID(at offset: Int) -> Bool {
        guard has(4, at: offset) else { return false }
        return (0..<4).allSatisfy { (0x20...0x7E).contains(bytes[offset + $0]) }
    }
}
