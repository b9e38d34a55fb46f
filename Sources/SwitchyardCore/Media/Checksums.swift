/// CRC-32 as PNG, gzip, ZIP and zlib's `crc32` compute it (reflected polynomial 0xEDB88320, initial
/// and final XOR 0xFFFFFFFF), for writing PNG chunks and checking them in tests.
public enum CRC32 {
    private static let table: [UInt32] = (0..<256).map { index in
        var value = UInt32(index)
        for _ in 0..<8 { value = value & 1 == 1 ? 0xEDB8_8320 ^ (value >> 1) : value >> 1 }
        return value
    }

    /// The CRC-32 of `bytes`; `checksum(b, continuing: checksum(a))` equals `checksum(a + b)`.
    public static func checksum(_ bytes: some Sequence<UInt8>, continuing previous: UInt32 = 0) -> UInt32 {
        var crc = ~previous
        let fast: Void? = bytes.withContiguousStorageIfAvailable { buffer in
            for byte in buffer { crc = table[Int((crc ^ UInt32(byte)) & 0xFF)] ^ (crc >> 8) }
        }
        if fast == nil {
            for byte in bytes { crc = table[Int((crc ^ UInt32(byte)) & 0xFF)] ^ (crc >> 8) }
        }
        return ~crc
    }
}

/// Adler-32 (RFC 1950), the checksum that ends a zlib stream.
public enum Adler32 {
    /// The Adler-32 of `bytes`; `checksum(b, continuing: checksum(a))` equals `checksum(a + b)`.
    public static func checksum(_ bytes: some Sequence<UInt8>, continuing previous: UInt32 = 1) -> UInt32 {
        var a = (previous & 0xFFFF) % 65521
        var b = (previous >> 16) % 65521
        // 5552 bytes is the most that can be summed before the 32-bit sums could overflow (zlib's NMAX).
        var pending = 0
        for byte in bytes {
            a += UInt32(byte)
            b += a
            pending += 1
            if pending == 5552 {
                a %= 65521
                b %= 65521
                pending = 0
            }
        }
        return (b % 65521) << 16 | (a % 65521)
    }
}
