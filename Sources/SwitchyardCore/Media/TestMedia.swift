/// Deterministic media for the built-in offline test models (`demo-image`, `demo-tts`): the same
/// arguments give the same bytes on every platform, so tests can compare files and durations exactly.
public enum TestMedia {
    /// The largest side `png(width:height:seed:)` draws; larger sizes are clamped to it.
    public static let maximumImageSide = 4096

    /// A valid PNG (8-bit RGB, no interlace) of a gradient with an 8-pixel checkerboard, tinted by
    /// `seed`. The image data is a zlib stream of stored (uncompressed) deflate blocks of at most
    /// 65535 bytes, so no compressor is needed; CRC-32s and the Adler-32 are real. Sides are clamped to
    /// 1…`maximumImageSide`. A 1024×1024 image is about 3 MiB.
    public static func png(width: Int, height: Int, seed: Int) -> [UInt8] {
        let width = min(max(width, 1), maximumImageSide)
        let height = min(max(height, 1), maximumImageSide)
        let tint = splitMix(UInt64(bitPattern: Int64(seed)))
        let red = Int(tint & 0xFF)
        let green = Int((tint >> 8) & 0xFF)
        let blue = Int((tint >> 16) & 0xFF)
        var raw: [UInt8] = []
        raw.reserveCapacity(height * (1 + 3 * width))
        for y in 0..<height {
            raw.append(0)  // filter type None
            for x in 0..<width {
                raw.append(UInt8(truncatingIfNeeded: x * 255 / max(1, width - 1) + red))
                raw.append(UInt8(truncatingIfNeeded: y * 255 / max(1, height - 1) + green))
                raw.append(UInt8(truncatingIfNeeded: ((x / 8 + y / 8) & 1) * 128 + blue))
            }
        }
        var header: [UInt8] = []
        header += bigEndian(UInt32(width))
        header += bigEndian(UInt32(height))
        header += [8, 2, 0, 0, 0]  // bit depth 8, colour type RGB, deflate, adaptive filtering, no interlace
        var file: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
        file += pngChunk("IHDR", header)
        file += pngChunk("IDAT", zlibStored(raw))
        file += pngChunk("IEND", [])
        return file
    }

    /// A 16-bit mono PCM WAV of a sine tone (`WAVTone`'s whole file).
    public static func wavTone(seconds: Double, sampleRate: Int = 24000, frequency: Double = 440) -> [UInt8] {
        WAVTone(seconds: seconds, sampleRate: sampleRate, frequency: frequency).file
    }

    /// The 44-byte header of a 16-bit mono PCM WAV with `dataBytes` of samples; nil `dataBytes` writes
    /// 0xFFFFFFFF sizes, as streaming writers do when the length is not known yet.
    public static func wavHeader(dataBytes: Int?, sampleRate: Int = 24000) -> [UInt8] {
        let rate = UInt32(clamping: sampleRate)
        let dataSize = dataBytes.map { UInt32(clamping: min(max($0, 0), Int(UInt32.max) - 36)) } ?? 0xFFFF_FFFF
        let riffSize = dataBytes == nil ? 0xFFFF_FFFF : dataSize + 36
        var header: [UInt8] = Array("RIFF".utf8) + littleEndian(riffSize) + Array("WAVEfmt ".utf8)
        header += littleEndian(UInt32(16))
        header += [1, 0, 1, 0]  // PCM, mono
        header += littleEndian(rate)
        header += littleEndian(rate &* 2)  // byte rate
        header += [2, 0, 16, 0]  // block align, bits per sample
        header += Array("data".utf8) + littleEndian(dataSize)
        return header
    }

    /// zlib (RFC 1950) around stored deflate blocks (RFC 1951 §3.2.4).
    static func zlibStored(_ data: [UInt8]) -> [UInt8] {
        var stream: [UInt8] = [0x78, 0x01]  // 32 KiB window, no preset dictionary; 0x7801 % 31 == 0
        stream.reserveCapacity(data.count + data.count / 65535 * 5 + 11)
        var start = 0
        repeat {
            let end = min(start + 65535, data.count)
            let length = UInt16(end - start)
            stream.append(end == data.count ? 1 : 0)  // BFINAL, BTYPE 00
            stream += [UInt8(length & 0xFF), UInt8(length >> 8), UInt8(~length & 0xFF), UInt8(~length >> 8)]
            stream += data[start..<end]
            start = end
        } while start < data.count
        stream += bigEndian(Adler32.checksum(data))
        return stream
    }

    static func pngChunk(_ type: String, _ data: [UInt8]) -> [UInt8] {
        let typed = Array(type.utf8) + data
        return bigEndian(UInt32(data.count)) + typed + bigEndian(CRC32.checksum(typed))
    }

    static func bigEndian(_ value: UInt32) -> [UInt8] {
        [UInt8(value >> 24), UInt8((value >> 16) & 0xFF), UInt8((value >> 8) & 0xFF), UInt8(value & 0xFF)]
    }

    static func littleEndian(_ value: UInt32) -> [UInt8] {
        [UInt8(value & 0xFF), UInt8((value >> 8) & 0xFF), UInt8((value >> 16) & 0xFF), UInt8(value >> 24)]
    }

    /// SplitMix64, to spread a small seed over all the tint bits.
    static func splitMix(_ seed: UInt64) -> UInt64 {
        var z = seed &+ 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE5_E9B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// A sine tone as a 16-bit mono PCM WAV that can be produced in any pieces: `bytes(in:)` of ranges
/// that tile `0..<byteCount` concatenate to `file`, so `demo-tts` can stream chunk by chunk and a
/// stopped stream is measurable from what was sent. Each sample is computed from its index alone.
public struct WAVTone: Sendable, Hashable {
    /// The header's length: `RIFF`, `fmt ` and the `data` chunk header.
    public static let headerCount = 44

    public let sampleRate: Int
    public let frequency: Double
    /// Samples (frames) in the file: `seconds × sampleRate`, rounded.
    public let frameCount: Int
    /// False writes 0xFFFFFFFF sizes, like an upstream that streams a WAV of unknown length.
    public let declaresSizes: Bool

    /// Peak level, a quarter below full scale so the tone is not harsh.
    static let amplitude = 0.25 * 32767

    /// A tone of `seconds` (negative or NaN is 0; at most what a 4 GiB RIFF holds) at `sampleRate`
    /// (clamped to 1…384000) and `frequency` Hz (clamped to 0…Nyquist).
    public init(seconds: Double, sampleRate: Int = 24000, frequency: Double = 440, declaresSizes: Bool = true) {
        let rate = min(max(sampleRate, 1), 384_000)
        let maximumFrames = (Int(UInt32.max) - 36) / 2
        let frames = seconds * Double(rate)
        self.sampleRate = rate
        self.frequency = frequency.isFinite ? min(max(frequency, 0), Double(rate) / 2) : 0
        self.frameCount = frames.isNaN || frames <= 0 ? 0 : Int(min(frames.rounded(), Double(maximumFrames)))
        self.declaresSizes = declaresSizes
    }

    /// The whole file's length in bytes.
    public var byteCount: Int { Self.headerCount + 2 * frameCount }

    public var header: [UInt8] {
        TestMedia.wavHeader(dataBytes: declaresSizes ? 2 * frameCount : nil, sampleRate: sampleRate)
    }

    /// The whole file.
    public var file: [UInt8] { bytes(in: 0..<byteCount) }

    /// Sample `frame` (0-based): round(amplitude × sin(2π · frequency · frame / sampleRate)).
    public func sample(at frame: Int) -> Int16 {
        let value = (Self.amplitude * Self.sine(turns: frequency * Double(frame) / Double(sampleRate))).rounded()
        return value.isFinite ? Int16(max(-32768, min(32767, value))) : 0
    }

    /// The file's bytes in `range`, clamped to `0..<byteCount`.
    public func bytes(in range: Range<Int>) -> [UInt8] {
        let lower = min(max(range.lowerBound, 0), byteCount)
        let upper = min(max(range.upperBound, lower), byteCount)
        var out: [UInt8] = []
        out.reserveCapacity(upper - lower)
        if lower < Self.headerCount {
            out += header[lower..<min(upper, Self.headerCount)]
        }
        var offset = max(lower, Self.headerCount)
        while offset < upper {
            // Little-endian: a sample's low byte is at an even offset from the header's end.
            let index = offset - Self.headerCount
            let value = UInt16(bitPattern: sample(at: index / 2))
            if index & 1 == 1 {
                out.append(UInt8(value >> 8))
                offset += 1
            } else {
                out.append(UInt8(value & 0xFF))
                if offset + 1 < upper { out.append(UInt8(value >> 8)) }
                offset += 2
            }
        }
        return out
    }

    /// `count` (1…2^20, at most one per byte) consecutive byte ranges of near-equal length that tile the file.
    public func chunkRanges(count: Int) -> [Range<Int>] {
        let pieces = min(max(count, 1), max(byteCount, 1), 1 << 20)
        return (0..<pieces).map { index in (index * byteCount / pieces)..<((index + 1) * byteCount / pieces) }
    }

    /// The file in `count` pieces (see `chunkRanges(count:)`).
    public func chunks(count: Int) -> [[UInt8]] {
        chunkRanges(count: count).map { bytes(in: $0) }
    }

    /// sin(2π · turns) in plain Swift arithmetic (folded to a quarter turn, then a degree-17 Taylor
    /// polynomial, error below 1e-11), because libm's `sin` may differ in the last bit across platforms.
    static func sine(turns: Double) -> Double {
        guard turns.isFinite else { return 0 }
        var t = turns - turns.rounded(.down)
        if t >= 0.5 { t -= 1 }
        if t > 0.25 { t = 0.5 - t } else if t < -0.25 { t = -0.5 - t }
        let x = 2 * Double.pi * t
        let x2 = x * x
        var series = 1 - x2 / 272  // Horner form of x − x³/3! + x⁵/5! − … + x¹⁷/17!
        series = 1 - x2 / 210 * series
        series = 1 - x2 / 156 * series
        series = 1 - x2 / 110 * series
        series = 1 - x2 / 72 * series
        series = 1 - x2 / 42 * series
        series = 1 - x2 / 20 * series
        series = 1 - x2 / 6 * series
        return x * series
    }
}
