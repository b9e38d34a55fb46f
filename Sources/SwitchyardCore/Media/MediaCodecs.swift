/// What an upload is, told from its bytes alone (never its name or declared content type): the images,
/// documents, audio and text the gateway accepts as files, for vision and for audio billing. (Not
/// `MediaType`: Hummingbird has one, and SwitchyardServer sees both.)
public enum MediaFormat: String, Sendable, Hashable, CaseIterable {
    case png, jpeg, gif, webp, pdf, wav, mp3, flac, ogg, text

    /// The MIME type the bytes are served with (file content, data URLs).
    public var mimeType: String {
        switch self {
        case .png: "image/png"
        case .jpeg: "image/jpeg"
        case .gif: "image/gif"
        case .webp: "image/webp"
        case .pdf: "application/pdf"
        case .wav: "audio/wav"
        case .mp3: "audio/mpeg"
        case .flac: "audio/flac"
        case .ogg: "audio/ogg"
        case .text: "text/plain"
        }
    }

    /// A short name for messages, such as "detected PDF; purpose vision accepts images only".
    public var name: String {
        switch self {
        case .png: "PNG"
        case .jpeg: "JPEG"
        case .gif: "GIF"
        case .webp: "WebP"
        case .pdf: "PDF"
        case .wav: "WAV"
        case .mp3: "MP3"
        case .flac: "FLAC"
        case .ogg: "Ogg"
        case .text: "UTF-8 text"
        }
    }

    /// The usual file name extension, without the dot.
    public var fileExtension: String {
        switch self {
        case .jpeg: "jpg"
        case .text: "txt"
        default: rawValue
        }
    }

    /// PNG, JPEG, GIF or WebP: what purpose `vision` and `image_url` parts accept.
    public var isImage: Bool {
        switch self {
        case .png, .jpeg, .gif, .webp: true
        default: false
        }
    }

    /// WAV, MP3, FLAC or Ogg: what `AudioDuration` can measure.
    public var isAudio: Bool {
        switch self {
        case .wav, .mp3, .flac, .ogg: true
        default: false
        }
    }
}

/// Tells a file's type from its leading magic bytes, so a PNG named `notes.txt` is a PNG and an
/// executable named `cat.png` is refused.
public enum MediaSniffer {
    /// The type of `bytes`, or nil when it is none of the `MediaFormat`s (or empty).
    ///
    /// Binary signatures are checked first and only at offset 0 (a PDF with junk before `%PDF-` is not
    /// a PDF here). An ID3v2 tag is skipped to tell MP3 from FLAC-with-ID3; ID3 before an AAC (ADTS)
    /// stream is refused. A bare MPEG audio frame must be layer II or III and, when the bytes go on,
    /// be followed by a second frame (or a tag), since one random 0xFFE… header is too easy to hit.
    /// Text is valid UTF-8 with no NUL and at most one control character per hundred.
    public static func sniff(_ bytes: [UInt8]) -> MediaFormat? {
        let data = MediaBytes(bytes)
        guard !bytes.isEmpty else { return nil }
        if data.matches([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A], at: 0) { return .png }
        if data.matches([0xFF, 0xD8, 0xFF], at: 0) { return .jpeg }
        if data.matches("GIF87a", at: 0) || data.matches("GIF89a", at: 0) { return .gif }
        if data.matches("RIFF", at: 0), data.matches("WEBP", at: 8) { return .webp }
        if data.matches("RIFF", at: 0) || data.matches("RF64", at: 0) || data.matches("BW64", at: 0),
            data.matches("WAVE", at: 8)
        {
            return .wav
        }
        if data.matches("%PDF-", at: 0) { return .pdf }
        if data.matches("fLaC", at: 0) { return .flac }
        if data.matches("OggS", at: 0), data.u8(4) == 0 { return .ogg }
        if data.matches("ID3", at: 0) {
            guard let end = ID3v2.end(in: data, from: 0) else { return nil }
            if data.matches("fLaC", at: end) { return .flac }
            if let b0 = data.u8(end), let b1 = data.u8(end + 1), b0 == 0xFF, b1 & 0xF6 == 0xF0 { return nil }
            return .mp3
        }
        if let header = MPEGFrameHeader(in: data, at: 0), header.layer != 1,
            MPEGFrameHeader.isConfirmed(header, at: 0, in: data)
        {
            return .mp3
        }
        return UTF8Text.isText(bytes) ? .text : nil
    }
}

/// The UTF-8 text test: strictly valid UTF-8 (no overlongs, surrogates or values past U+10FFFF), no NUL,
/// and few control characters (tab, LF, VT, FF and CR are text), so that binaries with long ASCII runs
/// are not taken for text.
enum UTF8Text {
    static func isText(_ bytes: [UInt8]) -> Bool {
        var index = 0
        var scalars = 0
        var controls = 0
        let count = bytes.count
        while index < count {
            let lead = bytes[index]
            if lead < 0x80 {
                if lead == 0 { return false }
                if (lead < 0x20 && !(0x09...0x0D).contains(lead)) || lead == 0x7F { controls += 1 }
                index += 1
                scalars += 1
                continue
            }
            let length: Int
            var scalar: UInt32
            switch lead {
            case 0xC2...0xDF: length = 2; scalar = UInt32(lead & 0x1F)
            case 0xE0...0xEF: length = 3; scalar = UInt32(lead & 0x0F)
            case 0xF0...0xF4: length = 4; scalar = UInt32(lead & 0x07)
            default: return false
            }
            guard index + length <= count else { return false }
            for offset in 1..<length {
                let next = bytes[index + offset]
                guard next & 0xC0 == 0x80 else { return false }
                scalar = scalar << 6 | UInt32(next & 0x3F)
            }
            switch length {
            case 3 where scalar < 0x800 || (0xD800...0xDFFF).contains(scalar): return false
            case 4 where scalar < 0x1_0000 || scalar > 0x10_FFFF: return false
            default: break
            }
            if (0x80...0x9F).contains(scalar) { controls += 1 }
            index += length
            scalars += 1
        }
        return scalars > 0 && controls * 100 <= scalars
    }
}

/// Bounds-checked reads from untrusted bytes: every accessor returns nil (or false) rather than trap
/// when the bytes are too short, and offsets are compared without overflowing.
struct MediaBytes {
    let bytes: [UInt8]

    init(_ bytes: [UInt8]) {
        self.bytes = bytes
    }

    var count: Int { bytes.count }

    /// Whether `length` bytes start at `offset`.
    func has(_ length: Int, at offset: Int) -> Bool {
        offset >= 0 && length >= 0 && offset <= bytes.count - length
    }

    func u8(_ offset: Int) -> UInt8? {
        has(1, at: offset) ? bytes[offset] : nil
    }

    func u16le(_ offset: Int) -> Int? {
        guard has(2, at: offset) else { return nil }
        return Int(bytes[offset]) | Int(bytes[offset + 1]) << 8
    }

    func u32le(_ offset: Int) -> Int? {
        guard has(4, at: offset) else { return nil }
        return (0..<4).reduce(0) { $0 | Int(bytes[offset + $1]) << (8 * $1) }
    }

    func u32be(_ offset: Int) -> Int? {
        guard has(4, at: offset) else { return nil }
        return (0..<4).reduce(0) { $0 << 8 | Int(bytes[offset + $1]) }
    }

    func u64le(_ offset: Int) -> UInt64? {
        guard has(8, at: offset) else { return nil }
        return (0..<8).reduce(0) { $0 | UInt64(bytes[offset + $1]) << (8 * UInt64($1)) }
    }

    func matches(_ pattern: [UInt8], at offset: Int) -> Bool {
        guard has(pattern.count, at: offset) else { return false }
        for (index, byte) in pattern.enumerated() where bytes[offset + index] != byte { return false }
        return true
    }

    func matches(_ ascii: StaticString, at offset: Int) -> Bool {
        ascii.withUTF8Buffer { pattern in
            guard has(pattern.count, at: offset) else { return false }
            for index in 0..<pattern.count where bytes[offset + index] != pattern[index] { return false }
            return true
        }
    }

    /// The first offset at or after `start` (and before `limit`) where `ascii` occurs.
    func find(_ ascii: StaticString, from start: Int, before limit: Int) -> Int? {
        let pattern = ascii.withUTF8Buffer { Array($0) }
        guard let first = pattern.first else { return nil }
        var offset = max(0, start)
        let end = min(limit, bytes.count - pattern.count + 1)
        while offset < end {
            if bytes[offset] == first, matches(pattern, at: offset) { return offset }
            offset += 1
        }
        return nil
    }
}

/// ID3v2 tags (id3.org v2.3/v2.4): a 10-byte header with a syncsafe size, plus a 10-byte footer when
/// flag 0x10 is set. Tags may repeat; all of them are skipped.
enum ID3v2 {
    /// The offset just past the ID3v2 tags that start at `offset`, or nil when a tag header is malformed.
    static func end(in data: MediaBytes, from offset: Int) -> Int? {
        var position = offset
        while data.matches("ID3", at: position) {
            guard data.has(10, at: position), let major = data.u8(position + 3), (2...4).contains(major),
                data.u8(position + 4) != 0xFF, let flags = data.u8(position + 5)
            else { return nil }
            var size = 0
            for index in 6..<10 {
                guard let byte = data.u8(position + index), byte < 0x80 else { return nil }
                size = size << 7 | Int(byte)
            }
            position += 10 + size + (flags & 0x10 != 0 && major == 4 ? 10 : 0)
        }
        return position
    }
}
