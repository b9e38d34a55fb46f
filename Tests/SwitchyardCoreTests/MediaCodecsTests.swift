import Testing

@testable import SwitchyardCore

/// Builders for small, hand-made media files: each is the least a parser needs, laid out as the format's
/// specification says, so a test states exactly what the file claims.
enum MediaFixtures {
    static func le16(_ value: Int) -> [UInt8] { (0..<2).map { UInt8(truncatingIfNeeded: value >> (8 * $0)) } }
    static func le32(_ value: Int) -> [UInt8] { (0..<4).map { UInt8(truncatingIfNeeded: value >> (8 * $0)) } }
    static func le64(_ value: Int64) -> [UInt8] { (0..<8).map { UInt8(truncatingIfNeeded: value >> (8 * $0)) } }
    static func be32(_ value: Int) -> [UInt8] { (0..<4).map { UInt8(truncatingIfNeeded: value >> (24 - 8 * $0)) } }
    static func ascii(_ text: String) -> [UInt8] { Array(text.utf8) }
    static func zeros(_ count: Int) -> [UInt8] { [UInt8](repeating: 0, count: count) }

    /// Deterministic noise (xorshift64*), never all-zero.
    static func noise(count: Int, seed: UInt64) -> [UInt8] {
        var state = seed | 1
        return (0..<count).map { _ in
            state ^= state >> 12
            state ^= state << 25
            state ^= state >> 27
            return UInt8(truncatingIfNeeded: (state &* 0x2545_F491_4F6C_DD1D) >> 56)
        }
    }

    // MARK: WAV

    /// A RIFF chunk; odd bodies get their pad byte unless `pad` is false.
    static func chunk(_ id: String, _ body: [UInt8], size: Int? = nil, pad: Bool = true) -> [UInt8] {
        ascii(id) + le32(size ?? body.count) + body + (pad && body.count % 2 == 1 ? [0] : [])
    }

    static func wave(_ chunks: [[UInt8]], id: String = "RIFF", size: Int? = nil) -> [UInt8] {
        let body = chunks.flatMap { $0 }
        return ascii(id) + le32(size ?? body.count + 4) + ascii("WAVE") + body
    }

    static func fmt(tag: Int = 1, channels: Int, rate: Int, bits: Int, blockAlign: Int? = nil) -> [UInt8] {
        let align = blockAlign ?? channels * bits / 8
        return chunk("fmt ", le16(tag) + le16(channels) + le32(rate) + le32(rate * align) + le16(align) + le16(bits))
    }

    /// WAVE_FORMAT_EXTENSIBLE with the KSDATAFORMAT_SUBTYPE GUID of `subtype` (1 PCM, 3 float).
    static func fmtExtensible(channels: Int, rate: Int, bits: Int, subtype: Int) -> [UInt8] {
        let align = channels * bits / 8
        let guid = le16(subtype) + [0, 0, 0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xAA, 0x00, 0x38, 0x9B, 0x71]
        let body = le16(0xFFFE) + le16(channels) + le32(rate) + le32(rate * align) + le16(align) + le16(bits)
            + le16(22) + le16(bits) + le32(3) + guid
        return chunk("fmt ", body)
    }

    // MARK: MP3

    /// An MPEG audio frame: the 4 header bytes, then zeros up to `length`.
    static func mpegFrame(_ header: [UInt8], length: Int) -> [UInt8] {
        header + zeros(length - header.count)
    }

    /// MPEG-1 layer III, 128 kbit/s, 44.1 kHz, joint stereo, no CRC: 417 bytes (418 padded), 1152 samples.
    static func layer3Frame(padded: Bool = false) -> [UInt8] {
        mpegFrame([0xFF, 0xFB, padded ? 0x92 : 0x90, 0x40], length: padded ? 418 : 417)
    }

    /// A first frame carrying a Xing (VBR) or Info (CBR) tag that states `frames`.
    static func xingFrame(frames: Int, tag: String = "Xing") -> [UInt8] {
        var frame = layer3Frame()
        let tagBytes = ascii(tag) + be32(0x0F) + be32(frames) + be32(frames * 417)
        frame.replaceSubrange(36..<(36 + tagBytes.count), with: tagBytes)
        return frame
    }

    /// A first frame carrying a Fraunhofer VBRI tag at byte 36.
    static func vbriFrame(frames: Int) -> [UInt8] {
        var frame = layer3Frame()
        let tagBytes = ascii("VBRI") + [0, 1, 0, 0, 0, 75] + be32(frames * 417) + be32(frames)
        frame.replaceSubrange(36..<(36 + tagBytes.count), with: tagBytes)
        return frame
    }

    /// An ID3v2 tag of `size` body bytes (syncsafe), with a v2.4 footer when asked.
    static func id3v2(size: Int, footer: Bool = false) -> [UInt8] {
        let syncsafe = (0..<4).map { UInt8((size >> (21 - 7 * $0)) & 0x7F) }
        let header = ascii("ID3") + [footer ? 4 : 3, 0, footer ? 0x10 : 0] + syncsafe
        let tail = footer ? ascii("3DI") + [4, 0, 0x10] + syncsafe : []
        return header + zeros(size) + tail
    }

    static func id3v1() -> [UInt8] { ascii("TAG") + [UInt8](repeating: 0x20, count: 125) }

    // MARK: FLAC

    static func streamInfo(rate: Int, channels: Int = 2, bits: Int = 16, totalSamples: Int64) -> [UInt8] {
        var info: [UInt8] = [0x10, 0x00, 0x10, 0x00, 0, 0, 0, 0, 0, 0]
        info += [UInt8(rate >> 12), UInt8((rate >> 4) & 0xFF)]
        info.append(UInt8((rate & 0x0F) << 4 | (channels - 1) << 1 | (bits - 1) >> 4))
        info.append(UInt8(((bits - 1) & 0x0F) << 4) | UInt8((totalSamples >> 32) & 0x0F))
        info += be32(Int(totalSamples & 0xFFFF_FFFF))
        return info + zeros(16)  // MD5
    }

    static func flac(rate: Int, totalSamples: Int64) -> [UInt8] {
        ascii("fLaC") + [0x80, 0, 0, 34] + streamInfo(rate: rate, totalSamples: totalSamples) + [0xFF, 0xF8, 0, 0]
    }

    // MARK: Ogg

    /// One Ogg page (RFC 3533) with its lacing values; the CRC is left zero, which the parser ignores.
    static func oggPage(flags: UInt8 = 0, granule: Int64, serial: Int = 0x5EED, sequence: Int, body: [UInt8])
        -> [UInt8]
    {
        let lacing = [UInt8](repeating: 255, count: body.count / 255) + [UInt8(body.count % 255)]
        return ascii("OggS") + [0, flags] + le64(granule) + le32(serial) + le32(sequence) + [0, 0, 0, 0]
            + [UInt8(lacing.count)] + lacing + body
    }

    static func vorbisIdentification(rate: Int) -> [UInt8] {
        [0x01] + ascii("vorbis") + le32(0) + [2] + le32(rate) + le32(0) + le32(128_000) + le32(0) + [0xB8, 0x01]
    }

    static func opusHead(preSkip: Int) -> [UInt8] {
        ascii("OpusHead") + [1, 2] + le16(preSkip) + le32(44100) + le16(0) + [0]
    }

    /// An Ogg Vorbis stream: identification, comments, then audio pages ending at `granules`.
    static func oggVorbis(rate: Int, granules: [Int64], serial: Int = 0x5EED) -> [UInt8] {
        var file = oggPage(flags: 0x02, granule: 0, serial: serial, sequence: 0, body: vorbisIdentification(rate: rate))
        file += oggPage(granule: 0, serial: serial, sequence: 1, body: [0x03] + ascii("vorbis") + le32(0) + le32(0))
        for (index, granule) in granules.enumerated() {
            let last = index == granules.count - 1
            file += oggPage(flags: last ? 0x04 : 0, granule: granule, serial: serial, sequence: index + 2,
                            body: [UInt8](repeating: 0x55, count: 300))
        }
        return file
    }

    static func oggOpus(preSkip: Int, finalGranule: Int64, serial: Int = 0x0F05) -> [UInt8] {
        oggPage(flags: 0x02, granule: 0, serial: serial, sequence: 0, body: opusHead(preSkip: preSkip))
            + oggPage(granule: 0, serial: serial, sequence: 1, body: ascii("OpusTags") + le32(0) + le32(0))
            + oggPage(granule: 48000, serial: serial, sequence: 2, body: [UInt8](repeating: 0xFC, count: 200))
            + oggPage(flags: 0x04, granule: finalGranule, serial: serial, sequence: 3,
                      body: [UInt8](repeating: 0xFC, count: 200))
    }

    /// One of each sniffable type, with what it is.
    static var samples: [(bytes: [UInt8], type: MediaFormat)] {
        [
            (TestMedia.png(width: 3, height: 2, seed: 1), .png),
            ([0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10] + ascii("JFIF") + [0, 1, 1], .jpeg),
            (ascii("GIF87a") + [1, 0, 1, 0, 0, 0, 0], .gif),
            (ascii("GIF89a") + [1, 0, 1, 0, 0, 0, 0], .gif),
            (ascii("RIFF") + le32(12) + ascii("WEBPVP8L") + le32(0), .webp),
            (ascii("%PDF-1.7\n%\u{E2}\u{E3}\n1 0 obj\n"), .pdf),
            (TestMedia.wavTone(seconds: 0.01), .wav),
            (id3v2(size: 20) + layer3Frame() + layer3Frame(), .mp3),
            (layer3Frame() + layer3Frame(), .mp3),
            (flac(rate: 44100, totalSamples: 44100), .flac),
            (oggVorbis(rate: 44100, granules: [44100]), .ogg),
            (ascii("plain words\nand a second line\r\n"), .text),
            (ascii(#"{"model":"m","emoji":"é😀"}"#), .text),
            (ascii("a,b,c\n1,2,3\n"), .text),
            (ascii("# Title\n\n- item\t\u{0C}\n"), .text),
        ]
    }
}

@Suite struct MediaCodecsTests {
    typealias F = MediaFixtures

    /// The duration of a RIFF/WAVE file made of `chunks`.
    func wav(_ chunks: [[UInt8]]) -> Double? { AudioDuration.seconds(of: F.wave(chunks)) }

    // MARK: Sniffing

    @Test func sniffsEveryMagic() {
        for (bytes, type) in F.samples {
            #expect(MediaSniffer.sniff(bytes) == type, "\(type)")
        }
    }

    @Test func namesAndDeclaredTypesPlayNoRole() {
        // A PNG uploaded as notes.txt / text/plain: only the bytes reach the sniffer.
        let png = TestMedia.png(width: 2, height: 2, seed: 0)
        let upload = (filename: "notes.txt", contentType: "text/plain", data: png)
        #expect(MediaSniffer.sniff(upload.data) == .png)
        #expect(MediaSniffer.sniff(F.ascii("just text named cat.png")) == .text)
    }

    @Test func typesKnowTheirMimeAndKind() {
        let mime = MediaFormat.allCases.map(\.mimeType)
        #expect(mime == [
            "image/png", "image/jpeg", "image/gif", "image/webp", "application/pdf", "audio/wav", "audio/mpeg",
            "audio/flac", "audio/ogg", "text/plain",
        ])
        #expect(MediaFormat.allCases.filter(\.isImage) == [.png, .jpeg, .gif, .webp])
        #expect(MediaFormat.allCases.filter(\.isAudio) == [.wav, .mp3, .flac, .ogg])
        #expect(MediaFormat.pdf.name == "PDF")
        #expect(MediaFormat.jpeg.fileExtension == "jpg")
    }

    @Test func noiseAndBinariesAreNothing() {
        for seed in 1...64 {
            #expect(MediaSniffer.sniff(F.noise(count: 512, seed: UInt64(seed))) == nil, "seed \(seed)")
        }
        #expect(MediaSniffer.sniff([]) == nil)
        #expect(MediaSniffer.sniff([0x7F] + F.ascii("ELF") + [2, 1, 1, 0] + F.zeros(56)) == nil)
        #expect(MediaSniffer.sniff(F.ascii("text with a NUL\u{0}inside")) == nil)
        #expect(MediaSniffer.sniff([0xFF, 0xFE] + F.ascii("h\u{0}i\u{0}")) == nil)  // UTF-16 has NULs
        #expect(MediaSniffer.sniff(F.ascii("abc") + [0xC3]) == nil)  // truncated sequence
        #expect(MediaSniffer.sniff([0xC0, 0xAF]) == nil)  // overlong "/"
        #expect(MediaSniffer.sniff([0xED, 0xA0, 0x80]) == nil)  // a UTF-16 surrogate
        #expect(MediaSniffer.sniff([0xF4, 0x90, 0x80, 0x80]) == nil)  // past U+10FFFF
        #expect(MediaSniffer.sniff(F.ascii("\u{1}\u{2}\u{3}mostly controls\u{1B}\u{1B}")) == nil)
        #expect(MediaSniffer.sniff(F.ascii("RIFF") + F.le32(4) + F.ascii("AVI ")) == nil)
        #expect(MediaSniffer.sniff(F.ascii("OggS") + [1]) == nil)  // unknown Ogg version
        // One MPEG-looking header followed by something else is not enough; ID3 before AAC is refused.
        #expect(MediaSniffer.sniff([0xFF, 0xFB, 0x90, 0x40] + F.noise(count: 600, seed: 9)) == nil)
        #expect(MediaSniffer.sniff(F.id3v2(size: 10) + [0xFF, 0xF1, 0x50, 0x80, 0, 0x1F, 0xFC]) == nil)
        #expect(MediaSniffer.sniff(F.ascii("ID3") + [3, 0, 0, 0x80, 0, 0, 0]) == nil)  // size not syncsafe
    }

    @Test func id3BeforeFlacIsFlac() {
        let file = F.id3v2(size: 30) + F.flac(rate: 48000, totalSamples: 96000)
        #expect(MediaSniffer.sniff(file) == .flac)
        #expect(AudioDuration.seconds(of: file) == 2)
    }

    // MARK: WAV

    @Test func wavToneMeasuresExactly() {
        #expect(AudioDuration.seconds(of: TestMedia.wavTone(seconds: 2.5)) == 2.5)
        #expect(AudioDuration.seconds(of: TestMedia.wavTone(seconds: 1, sampleRate: 8000)) == 1)
        #expect(AudioDuration.seconds(of: TestMedia.wavTone(seconds: 0)) == 0)
    }

    @Test func wavChunksInAnyOrderWithOddPaddingAndList() {
        let samples = F.zeros(44100 * 4)  // 1 s of 16-bit stereo
        let list = F.chunk("LIST", F.ascii("INFOISFT") + F.le32(5) + F.ascii("lavf\u{0}"))  // 17 bytes: padded
        #expect(list.count % 2 == 0)
        let stereo = F.fmt(channels: 2, rate: 44100, bits: 16)
        #expect(wav([list, stereo, F.chunk("data", samples)]) == 1)
        #expect(wav([F.chunk("data", samples), list, stereo]) == 1)
        // A writer that forgot the pad byte after an odd chunk.
        let unpadded = F.chunk("junk", [1, 2, 3], pad: false)
        #expect(wav([stereo, unpadded, F.chunk("data", samples)]) == 1)
        // 24-bit mono at 48 kHz, half a second; a trailing partial frame does not count.
        let mono24 = F.fmt(channels: 1, rate: 48000, bits: 24)
        let half = F.chunk("data", F.zeros(24000 * 3 + 2))
        #expect(wav([mono24, half]) == 0.5)
    }

    @Test func wavExtensibleAndFloat() {
        let pcm = F.fmtExtensible(channels: 6, rate: 48000, bits: 16, subtype: 1)
        #expect(wav([pcm, F.chunk("data", F.zeros(48000 * 12))]) == 1)
        let float = F.fmtExtensible(channels: 2, rate: 32000, bits: 32, subtype: 3)
        let data = F.chunk("data", F.zeros(8000 * 8))
        #expect(wav([float, data]) == 0.25)
        let plainFloat = F.fmt(tag: 3, channels: 1, rate: 16000, bits: 32)
        #expect(wav([plainFloat, F.chunk("data", F.zeros(64000))]) == 1)
    }

    @Test func wavStreamingSizesUseTheBytesThere() {
        let format = F.fmt(channels: 1, rate: 24000, bits: 16)
        let samples = F.zeros(24000 * 2 * 3)
        for declared in [0, 0xFFFF_FFFF] {
            let file = F.wave([format, F.ascii("data") + F.le32(declared) + samples], size: declared)
            #expect(AudioDuration.seconds(of: file) == 3, "data size \(declared)")
        }
        // A header that promises more than arrived (a stopped stream) counts what arrived.
        let cut = F.wave([format, F.ascii("data") + F.le32(24000 * 2 * 10) + samples])
        #expect(AudioDuration.seconds(of: cut) == 3)
        // Measured from the header and the length alone, as a relay that keeps only the start does.
        let streamed = WAVTone(seconds: 4, declaresSizes: false)
        #expect(AudioDuration.wavSeconds(prefix: streamed.header, totalByteCount: streamed.byteCount) == 4)
        #expect(AudioDuration.wavSeconds(prefix: streamed.header, totalByteCount: 44 + 24000) == 0.5)
    }

    @Test func rf64UsesDs64AndCompressedUsesFact() {
        let ds64 = F.chunk("ds64", F.le64(0) + F.le64(96000) + F.le64(48000) + F.le32(0))
        let format = F.fmt(channels: 1, rate: 48000, bits: 16)
        let file = F.ascii("RF64") + F.le32(0xFFFF_FFFF) + F.ascii("WAVE") + ds64 + format
            + F.ascii("data") + F.le32(0xFFFF_FFFF) + F.zeros(96000)
        #expect(MediaSniffer.sniff(file) == .wav)
        #expect(AudioDuration.seconds(of: file) == 1)
        // IMA ADPCM (0x11): blocks hold many samples, so the fact chunk's sample count rules.
        let adpcm = F.chunk("fmt ", F.le16(0x11) + F.le16(1) + F.le32(22050) + F.le32(11100) + F.le16(512)
            + F.le16(4) + F.le16(2) + F.le16(1017))
        let fact = F.chunk("fact", F.le32(44100))
        #expect(wav([adpcm, fact, F.chunk("data", F.zeros(22200))]) == 2)
        // Without fact, the byte rate.
        #expect(wav([adpcm, F.chunk("data", F.zeros(11100))]) == 1)
    }

    @Test func malformedWavIsNil() {
        let format = F.fmt(channels: 1, rate: 8000, bits: 16)
        #expect(wav([format]) == nil)  // no data
        #expect(wav([F.chunk("data", [0, 0])]) == nil)  // no fmt
        #expect(wav([F.fmt(channels: 0, rate: 8000, bits: 16), F.chunk("data", [0, 0])]) == nil)
        #expect(wav([F.fmt(channels: 1, rate: 0, bits: 16), F.chunk("data", [0, 0])]) == nil)
        #expect(wav([F.chunk("fmt ", [1, 0, 1]), F.chunk("data", [0, 0])]) == nil)  // fmt too short
        #expect(AudioDuration.seconds(of: F.ascii("RIFF") + F.le32(4) + F.ascii("WAVE")) == nil)
        #expect(AudioDuration.seconds(of: F.ascii("RIFF")) == nil)
    }

    // MARK: MP3

    @Test func mp3ConstantBitrateCountsFrames() throws {
        for count in [1, 2, 10, 37] {
            let file = (0..<count).flatMap { _ in F.layer3Frame() }
            #expect(AudioDuration.seconds(of: file) == Double(count * 1152) / 44100, "\(count) frames")
        }
        // Padded frames are one byte longer; an ID3v2 tag (with a v2.4 footer) and ID3v1 are skipped.
        let mixed = (0..<20).flatMap { F.layer3Frame(padded: $0 % 3 == 0) }
        let tagged = F.id3v2(size: 300, footer: true) + mixed + F.id3v1()
        #expect(MediaSniffer.sniff(tagged) == .mp3)
        #expect(AudioDuration.seconds(of: tagged) == Double(20 * 1152) / 44100)
        // An APE tag ends the audio; a truncated last frame does not count.
        let ape = mixed + F.ascii("APETAGEX") + F.zeros(24)
        #expect(AudioDuration.seconds(of: ape) == Double(20 * 1152) / 44100)
        #expect(AudioDuration.seconds(of: Array(mixed.dropLast(5))) == Double(19 * 1152) / 44100)
        let seconds = try #require(AudioDuration.seconds(of: (0..<441).flatMap { _ in F.layer3Frame() }))
        #expect(abs(seconds - 11.52) < 1e-9)
    }

    @Test func mp3OtherVersionsAndLayers() {
        // MPEG-2 layer III, 64 kbit/s, 22.05 kHz: 208 bytes, 576 samples.
        let mpeg2 = (0..<50).flatMap { _ in F.mpegFrame([0xFF, 0xF3, 0x80, 0xC0], length: 208) }
        #expect(AudioDuration.seconds(of: mpeg2) == Double(50 * 576) / 22050)
        // MPEG-2.5 layer III, 8 kbit/s, 8 kHz: 72 bytes.
        let mpeg25 = (0..<10).flatMap { _ in F.mpegFrame([0xFF, 0xE3, 0x18, 0xC0], length: 72) }
        #expect(AudioDuration.seconds(of: mpeg25) == Double(10 * 576) / 8000)
        // MPEG-1 layer II, 192 kbit/s, 48 kHz: 576 bytes, 1152 samples.
        let layer2 = (0..<25).flatMap { _ in F.mpegFrame([0xFF, 0xFD, 0xA4, 0x00], length: 576) }
        #expect(MediaSniffer.sniff(layer2) == .mp3)
        #expect(AudioDuration.seconds(of: layer2) == 0.6)
        // MPEG-1 layer I, 384 kbit/s, 48 kHz: 384 bytes, 384 samples (measured, though not sniffed bare).
        let layer1 = F.id3v2(size: 0) + (0..<125).flatMap { _ in F.mpegFrame([0xFF, 0xFF, 0xC4, 0x00], length: 384) }
        #expect(AudioDuration.seconds(of: layer1) == 1)
    }

    @Test func mp3ResyncsOverJunk() {
        let frames = (0..<10).flatMap { _ in F.layer3Frame() }
        let junk = F.zeros(100) + [0xFF, 0x00, 0xFF, 0xFB] + F.zeros(50)
        let file = F.id3v2(size: 8) + junk + frames + junk + frames
        #expect(AudioDuration.seconds(of: file) == Double(20 * 1152) / 44100)
        // Zero padding after the tag is skipped however long it is; other junk only within 64 KiB.
        #expect(AudioDuration.seconds(of: F.id3v2(size: 8) + F.zeros(100_000) + frames) == Double(10 * 1152) / 44100)
        #expect(AudioDuration.seconds(of: F.id3v2(size: 8) + [UInt8](repeating: 1, count: 70000) + frames) == nil)
    }

    @Test func mp3XingInfoAndVbriGiveTheFrameCount() {
        let body = (0..<5).flatMap { _ in F.layer3Frame() }
        #expect(AudioDuration.seconds(of: F.xingFrame(frames: 1000) + body) == Double(1000 * 1152) / 44100)
        #expect(AudioDuration.seconds(of: F.xingFrame(frames: 5, tag: "Info") + body) == Double(5 * 1152) / 44100)
        #expect(AudioDuration.seconds(of: F.id3v2(size: 40) + F.vbriFrame(frames: 300) + body)
            == Double(300 * 1152) / 44100)
        // A Xing tag without the frame-count flag: the frames are walked and the tag frame is not audio.
        var flagless = F.xingFrame(frames: 1000)
        flagless[43] = 0x0E
        #expect(AudioDuration.seconds(of: flagless + body) == Double(5 * 1152) / 44100)
    }

    @Test func malformedMp3IsNil() {
        #expect(AudioDuration.seconds(of: [0xFF, 0xFB, 0x90]) == nil)
        #expect(AudioDuration.seconds(of: F.id3v2(size: 100)) == nil)  // a tag and no audio
        #expect(AudioDuration.seconds(of: F.id3v2(size: 10) + F.noise(count: 2000, seed: 3)) == nil)
        #expect(AudioDuration.seconds(of: F.id3v2(size: 5000).prefix(200).map { $0 }) == nil)
        #expect(AudioDuration.seconds(of: [0xFF, 0xFB, 0x00, 0x00] + F.zeros(500)) == nil)
    }

    // MARK: FLAC and Ogg

    @Test func flacStreamInfo() {
        #expect(AudioDuration.seconds(of: F.flac(rate: 44100, totalSamples: 441_000)) == 10)
        #expect(AudioDuration.seconds(of: F.flac(rate: 96000, totalSamples: 0x1_0000_0000)) == 4_294_967_296.0 / 96000)
        #expect(AudioDuration.seconds(of: F.flac(rate: 44100, totalSamples: 0)) == nil)  // length unknown
        #expect(AudioDuration.seconds(of: F.flac(rate: 0, totalSamples: 100)) == nil)
        #expect(AudioDuration.seconds(of: Array(F.flac(rate: 44100, totalSamples: 44100).prefix(30))) == nil)
        var notFirst = F.flac(rate: 44100, totalSamples: 44100)
        notFirst[4] = 0x84  // first block is a VORBIS_COMMENT, not STREAMINFO
        #expect(AudioDuration.seconds(of: notFirst) == nil)
    }

    @Test func oggVorbisUsesTheLastGranule() {
        let file = F.oggVorbis(rate: 44100, granules: [44100, 88200, 110_250])
        #expect(MediaSniffer.sniff(file) == .ogg)
        #expect(AudioDuration.seconds(of: file) == 2.5)
        // Pages where no packet ends carry granule -1 and are passed over.
        let open = F.oggPage(granule: -1, serial: 0x5EED, sequence: 9, body: [1, 2, 3])
        #expect(AudioDuration.seconds(of: file + open) == 2.5)
        // Junk between pages is skipped by finding the next capture pattern.
        let pages = F.oggVorbis(rate: 48000, granules: [48000, 96000])
        let cut = pages.count - 329  // the last page: 27 + 2 lacing + 300
        let damaged = Array(pages[..<cut]) + F.ascii("OggS garbage") + Array(pages[cut...])
        #expect(AudioDuration.seconds(of: damaged) == 2)
    }

    @Test func oggOpusIs48kHzMinusPreSkip() {
        #expect(AudioDuration.seconds(of: F.oggOpus(preSkip: 312, finalGranule: 48000 * 3 + 312)) == 3)
        #expect(AudioDuration.seconds(of: F.oggOpus(preSkip: 3840, finalGranule: 3840 + 24000)) == 0.5)
    }

    @Test func oggChainsAddAndOtherStreamsAreIgnored() {
        let chained = F.oggVorbis(rate: 44100, granules: [110_250]) + F.oggOpus(preSkip: 312, finalGranule: 144_312)
        #expect(AudioDuration.seconds(of: chained) == 5.5)
        // A skeleton (non-audio) stream multiplexed with the audio does not count.
        let fishead = F.ascii("fishead\u{0}") + [3, 0]
        let skeleton = F.oggPage(flags: 0x02, granule: 0, serial: 7, sequence: 0, body: fishead)
        let skeletonEnd = F.oggPage(flags: 0x04, granule: 999_999_999, serial: 7, sequence: 1, body: [])
        let vorbis = F.oggVorbis(rate: 8000, granules: [8000, 16000])
        let muxed = skeleton + vorbis.prefix(58) + skeletonEnd + vorbis.dropFirst(58)  // 58: the Vorbis BOS page
        #expect(AudioDuration.seconds(of: Array(muxed)) == 2)
    }

    @Test func malformedOggIsNil() {
        let unknown = F.oggPage(flags: 0x02, granule: 0, sequence: 0, body: F.ascii("unknown codec"))
        #expect(AudioDuration.seconds(of: unknown) == nil)
        #expect(AudioDuration.seconds(of: F.ascii("OggS") + [0, 2, 0, 0]) == nil)
        let noRate = F.oggVorbis(rate: 0, granules: [1000])
        #expect(AudioDuration.seconds(of: noRate) == nil)
    }

    // MARK: Robustness

    /// Every prefix of every sample, and flipped bytes: nothing traps, and a cut file never measures longer.
    @Test func truncatedAndCorruptedInputsNeverTrap() {
        var files = F.samples.map(\.bytes)
        files += [
            F.oggOpus(preSkip: 312, finalGranule: 48000), F.xingFrame(frames: 9) + F.layer3Frame(),
            F.wave([F.fmtExtensible(channels: 2, rate: 8000, bits: 16, subtype: 1), F.chunk("data", [1, 2, 3, 4])]),
        ]
        for file in files {
            let full = AudioDuration.seconds(of: file)
            let step = file.count > 600 ? 7 : 1
            for length in stride(from: 0, through: file.count, by: step) {
                let prefix = Array(file.prefix(length))
                _ = MediaSniffer.sniff(prefix)
                if let cut = AudioDuration.seconds(of: prefix), let full {
                    #expect(cut <= full + 1e-9)
                }
            }
            var corrupted = file
            for (index, byte) in F.noise(count: 64, seed: UInt64(file.count)).enumerated() {
                corrupted[(index * 7919) % corrupted.count] ^= byte
                _ = AudioDuration.seconds(of: corrupted)
                _ = MediaSniffer.sniff(corrupted)
            }
        }
    }

    // MARK: Generated media

    @Test func checksumsMatchKnownValues() {
        #expect(CRC32.checksum(F.ascii("123456789")) == 0xCBF4_3926)
        #expect(CRC32.checksum([]) == 0)
        #expect(Adler32.checksum(F.ascii("Wikipedia")) == 0x11E6_0398)
        #expect(Adler32.checksum([]) == 1)
        let data = F.noise(count: 20000, seed: 5)
        #expect(CRC32.checksum(data[10000...], continuing: CRC32.checksum(data[..<10000])) == CRC32.checksum(data))
        #expect(Adler32.checksum(data[7...], continuing: Adler32.checksum(data[..<7])) == Adler32.checksum(data))
    }

    /// Reads a PNG back: chunk CRCs, the stored deflate blocks (LEN/NLEN, at most 65535 bytes each), the
    /// Adler-32 and the image data (one filter byte, then 3 bytes a pixel, per row).
    func readPNG(_ png: [UInt8], width: Int, height: Int) throws -> (raw: [UInt8], blocks: Int) {
        #expect(png.prefix(8) == [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A])
        var offset = 8
        var types: [String] = []
        var idat: [UInt8] = []
        var header: [UInt8] = []
        while offset + 12 <= png.count {
            let length = Int(F.readBE32(png, offset))
            try #require(offset + 12 + length <= png.count)
            let typed = Array(png[(offset + 4)..<(offset + 8 + length)])
            #expect(F.readBE32(png, offset + 8 + length) == CRC32.checksum(typed))
            let type = String(decoding: typed.prefix(4), as: UTF8.self)
            types.append(type)
            if type == "IHDR" { header = Array(typed.dropFirst(4)) }
            if type == "IDAT" { idat += typed.dropFirst(4) }
            offset += 12 + length
        }
        #expect(offset == png.count)
        #expect(types == ["IHDR", "IDAT", "IEND"])
        #expect(header == F.be32(width) + F.be32(height) + [8, 2, 0, 0, 0])
        #expect(idat.prefix(2) == [0x78, 0x01])
        #expect((Int(idat[0]) << 8 | Int(idat[1])) % 31 == 0)
        var raw: [UInt8] = []
        var position = 2
        var blocks = 0
        while true {
            try #require(position + 5 <= idat.count)
            let final = idat[position] & 1 == 1
            #expect(idat[position] & 0x06 == 0)  // BTYPE 00: stored
            let length = Int(idat[position + 1]) | Int(idat[position + 2]) << 8
            let complement = Int(idat[position + 3]) | Int(idat[position + 4]) << 8
            #expect(length ^ complement == 0xFFFF)
            try #require(position + 5 + length <= idat.count)
            raw += idat[(position + 5)..<(position + 5 + length)]
            position += 5 + length
            blocks += 1
            if final { break }
        }
        try #require(position + 4 == idat.count)
        #expect(F.readBE32(idat, position) == Adler32.checksum(raw))
        #expect(raw.count == height * (1 + 3 * width))
        #expect((0..<height).allSatisfy { raw[$0 * (1 + 3 * width)] == 0 })
        return (raw, blocks)
    }

    @Test func pngIsValid() throws {
        // 170 rows of 451 bytes: 76670 bytes, two blocks; 771 rows of 85: exactly one full block;
        // 4096 rows of 16: 65536 bytes, a full block and a 1-byte one.
        for (width, height, blocks) in [(150, 170, 2), (28, 771, 1), (5, 4096, 2), (1, 1, 1)] {
            let png = TestMedia.png(width: width, height: height, seed: 42)
            #expect(try readPNG(png, width: width, height: height).blocks == blocks, "\(width)×\(height)")
            #expect(MediaSniffer.sniff(png) == .png)
        }
        let pixels = try readPNG(TestMedia.png(width: 2, height: 2, seed: 0), width: 2, height: 2).raw
        #expect(pixels.count == 14)
    }

    @Test func pngIsDeterministicPerSeed() {
        #expect(TestMedia.png(width: 16, height: 16, seed: 7) == TestMedia.png(width: 16, height: 16, seed: 7))
        #expect(TestMedia.png(width: 16, height: 16, seed: 7) != TestMedia.png(width: 16, height: 16, seed: 8))
        #expect(TestMedia.png(width: 0, height: -5, seed: -1) == TestMedia.png(width: 1, height: 1, seed: -1))
        #expect(TestMedia.png(width: 1_000_000, height: 1, seed: 0) == TestMedia.png(width: 4096, height: 1, seed: 0))
    }

    @Test func wavTonePiecesMakeTheWholeFile() {
        let tone = WAVTone(seconds: 2.5)
        let whole = TestMedia.wavTone(seconds: 2.5)
        #expect(tone.file == whole)
        #expect(whole.count == tone.byteCount)
        #expect(tone.byteCount == 44 + 2 * 60000)
        for count in [1, 2, 3, 7, 10, 64] {
            let pieces = tone.chunks(count: count)
            #expect(pieces.count == count)
            #expect(pieces.flatMap { $0 } == whole, "\(count) pieces")
        }
        #expect(tone.bytes(in: 0..<43) + tone.bytes(in: 43..<45) + tone.bytes(in: 45..<tone.byteCount) == whole)
        #expect(tone.bytes(in: -10..<1_000_000_000) == whole)
        #expect(Array(whole.prefix(44)) == TestMedia.wavHeader(dataBytes: 120_000))
        #expect(tone.sample(at: 0) == 0)
        #expect(WAVTone(seconds: 1, sampleRate: 4400, frequency: 1100).sample(at: 1) == 8192)  // a quarter turn
        #expect(WAVTone(seconds: -1).frameCount == 0)
        #expect(WAVTone(seconds: .nan).frameCount == 0)
        #expect(WAVTone(seconds: .infinity).frameCount * 2 + 36 <= Int(UInt32.max))  // the RIFF size fits
        // The unknown-length variant measures the same from its bytes.
        let streaming = WAVTone(seconds: 2.5, declaresSizes: false)
        #expect(Array(streaming.header[4..<8]) == [0xFF, 0xFF, 0xFF, 0xFF])
        #expect(AudioDuration.seconds(of: streaming.chunks(count: 5).flatMap { $0 }) == 2.5)
    }

    @Test func pcmSecondsCountWholeFrames() {
        #expect(AudioDuration.pcmSeconds(byteCount: 48000) == 1)
        #expect(AudioDuration.pcmSeconds(byteCount: 48001) == 1)
        #expect(AudioDuration.pcmSeconds(byteCount: 176_400, sampleRate: 44100, channels: 2) == 1)
        #expect(AudioDuration.pcmSeconds(byteCount: -4) == 0)
        #expect(AudioDuration.pcmSeconds(byteCount: 100, channels: 0) == 0)
    }
}

extension MediaFixtures {
    static func readBE32(_ bytes: [UInt8], _ offset: Int) -> UInt32 {
        (0..<4).reduce(0) { $0 << 8 | UInt32(bytes[offset + $1]) }
    }
}
