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

    /// 24 base62 characters (~143 bits): unguessable, so ids can later name requests to cancel.
    /// From the system's CSPRNG, 64 bits at a time (one `getrandom` each, not one per character, which
    /// was 2 % of a request's CPU): each character takes 6 bits, and the 2 of every 64 values ≥ 62
    /// are drawn again, so every character is uniform.
    public static func randomID() -> String {
        var generator = SystemRandomNumberGenerator()
        return String(unsafeUninitializedCapacity: 24) { buffer in
            var filled = 0
            while filled < 24 {
                var bits = generator.next()
                for _ in 0..<10 where filled < 24 {
                    let value = Int(bits & 63)
                    bits >>= 6
                    if value < 62 {
                        buffer[filled] = alphabet[value]
                        filled += 1
                    }
                }
            }
            return 24
        }
    }

    /// Replaces `id` and `model` in a response object, leaving everything else as the upstream sent it.
    public func stamp(_ object: inout JSONObject, endpoint: Endpoint) {
        if endpoint.stampsID { object["id"] = .string(id) }
        object["model"] = .string(model)
    }
}
