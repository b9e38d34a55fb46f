#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What the gateway stamps on every response: its own id (the same in every chunk of a stream) and
/// the public model name the client asked for, so that upstream ids and names never leak out.
public struct ResponseIdentity: Sendable, Equatable {
    public var id: String
    public var model: String
    public var created: Int

    public init(id: String, model: String, created: Int) {
        self.id = id
        self.model = model
        self.created = created
    }

    public static func make(for endpoint: Endpoint, model: String, created: Int) -> ResponseIdentity {
        ResponseIdentity(id: endpoint.idPrefix + randomID(), model: model, created: created)
    }

    private static let alphabet = Array("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz".utf8)

    /// 8 base62 characters of the time in milliseconds, then 20 random ones (~119 bits): 28 in all.
    /// Unguessable, so ids can name requests to cancel; time-ordered, so the ledger's primary-key
    /// index (and `files`') grows at its right edge. With 24 random characters every insert dirtied a
    /// random leaf of that index: a whole page more per request in the WAL and in every checkpoint,
    /// and one more per request in a group-commit batch, where the time-ordered inserts share a page.
    /// The characters are in ASCII order, so byte order (SQLite's `BINARY`, PostgreSQL's `COLLATE "C"`
    /// or not) follows the time until the year 8888.
    /// The random part is 32 bytes from the system's CSPRNG in one `getrandom` (`SecureRandom`):
    /// each character takes a byte's low 6 bits, and the 2 of every 64 values ≥ 62 are skipped, so
    /// every character is uniform (should more than 12 of the 32 be skipped, 32 more are drawn).
    public static func randomID(milliseconds: Int64 = currentMilliseconds()) -> String {
        String(unsafeUninitializedCapacity: 28) { buffer in
            var time = UInt64(clamping: milliseconds)
            for index in stride(from: 7, through: 0, by: -1) {
                buffer[index] = alphabet[Int(time % 62)]
                time /= 62
            }
            var filled = 8
            withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 32) { random in
                while filled < 28 {
                    SecureRandom.fill(UnsafeMutableRawBufferPointer(random))
                    for byte in random where filled < 28 {
                        let value = Int(byte & 63)
                        if value < 62 {
                            buffer[filled] = alphabet[value]
                            filled += 1
                        }
                    }
                }
            }
            return 28
        }
    }

    /// The wall clock in milliseconds since 1970 (`clock_gettime`, no `Date` on the hot path).
    public static func currentMilliseconds() -> Int64 {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return Int64(now.tv_sec) * 1000 + Int64(now.tv_nsec) / 1_000_000
    }

    /// Replaces `id` and `model` in a response object, leaving everything else as the upstream sent it.
    public func stamp(_ object: inout JSONObject, endpoint: Endpoint) {
        if endpoint.stampsID { object["id"] = .string(id) }
        object["model"] = .string(model)
    }
}
