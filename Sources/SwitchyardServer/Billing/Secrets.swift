import Crypto

/// Key material: generation, hashing and comparison. Keys are stored only as SHA-256 digests and
/// compared in constant time.
enum Secrets {
    static let alphabet = Array("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz".utf8)

    /// `prefix` + 32 random bytes in base62 (43 characters).
    static func newKey(prefix: String) -> String {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<32).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
        return prefix + base62(bytes)
    }

    /// A short random identifier (`acct_…`, `key_…`).
    static func newID(prefix: String, length: Int = 16) -> String {
        var generator = SystemRandomNumberGenerator()
        let characters = (0..<length).map { _ in alphabet[Int(generator.next(upperBound: UInt8(alphabet.count)))] }
        return prefix + String(decoding: characters, as: UTF8.self)
    }

    static func base62(_ bytes: [UInt8]) -> String {
        var number = bytes
        var digits: [UInt8] = []
        while number.contains(where: { $0 != 0 }) {
            var remainder = 0
            for index in number.indices {
                let value = remainder * 256 + Int(number[index])
                number[index] = UInt8(value / 62)
                remainder = value % 62
            }
            digits.append(alphabet[remainder])
        }
        while digits.count < 43 { digits.append(alphabet[0]) }
        return String(decoding: digits.reversed(), as: UTF8.self)
    }

    static func hash(_ secret: String) -> [UInt8] {
        Array(SHA256.hash(data: Array(secret.utf8)))
    }

    /// Whether a presented secret (nil: none) hashes to `digest`, compared in constant time.
    static func matches(_ presented: String?, digest: [UInt8]) -> Bool {
        guard let presented else { return false }
        return constantTimeEqual(hash(presented), digest)
    }

    /// Equal-length digests compared without an early exit, so timing reveals nothing.
    static func constantTimeEqual(_ lhs: [UInt8], _ rhs: [UInt8]) -> Bool {
        guard lhs.count == rhs.count else { return false }
        var difference: UInt8 = 0
        for index in lhs.indices { difference |= lhs[index] ^ rhs[index] }
        return difference == 0
    }
}
