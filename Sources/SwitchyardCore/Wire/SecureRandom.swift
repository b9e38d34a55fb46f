#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Random bytes from the system's CSPRNG, up to 256 in one system call (`getentropy`, which is
/// `getrandom` on Linux). Swift's `SystemRandomNumberGenerator` makes one call per 64 bits: an id of
/// 20 random characters took two or three, and a request made several ids.
public enum SecureRandom {
    /// Fills `buffer`, 256 bytes per call.
    public static func fill(_ buffer: UnsafeMutableRawBufferPointer) {
        guard let base = buffer.baseAddress else { return }
        var offset = 0
        while offset < buffer.count {
            let count = min(256, buffer.count - offset)
            if getentropy(base + offset, count) != 0 {
                // Not expected on any supported system; the standard library's generator still works.
                var generator = SystemRandomNumberGenerator()
                for index in offset..<buffer.count {
                    buffer[index] = UInt8.random(in: .min ... .max, using: &generator)
                }
                return
            }
            offset += count
        }
    }
}
