import SwitchyardCore

/// The request id: the caller's own `x-request-id` when it is safe to write into logs, otherwise one
/// the gateway makes (`req_` and 32 hex digits). Either way it goes back in the `x-request-id`
/// response header and on every log line of the request.
enum RequestID {
    static let maxLength = 128

    /// The caller's id if it is 1–128 characters of `A–Z a–z 0–9 - _ . : / + = @`; nil otherwise (it
    /// is then replaced, not refused). Nothing else can reach a log line: no spaces, quotes or
    /// control characters that could forge one.
    static func accept(_ candidate: String?) -> String? {
        guard let candidate, !candidate.isEmpty, candidate.utf8.count <= maxLength,
            candidate.utf8.allSatisfy(isAllowed)
        else { return nil }
        return candidate
    }

    /// `req_` and 32 hex digits: 16 bytes from one `getrandom`.
    static func make() -> String {
        String(unsafeUninitializedCapacity: 36) { buffer in
            buffer[0] = UInt8(ascii: "r")
            buffer[1] = UInt8(ascii: "e")
            buffer[2] = UInt8(ascii: "q")
            buffer[3] = UInt8(ascii: "_")
            withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 16) { random in
                SecureRandom.fill(UnsafeMutableRawBufferPointer(random))
                for (index, byte) in random.enumerated() {
                    buffer[4 + 2 * index] = hex[Int(byte >> 4)]
                    buffer[5 + 2 * index] = hex[Int(byte & 15)]
                }
            }
            return 36
        }
    }

    private static let hex = Array("0123456789abcdef".utf8)

    private static func isAllowed(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"):
            true
        case UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."), UInt8(ascii: ":"), UInt8(ascii: "/"),
            UInt8(ascii: "+"), UInt8(ascii: "="), UInt8(ascii: "@"):
            true
        default:
            false
        }
    }
}
