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

    /// 24 base62 characters (~143 bits): unguessable, so ids can later name requests to cancel.
    public static func randomID() -> String {
        let alphabet = Array("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz".utf8)
        var generator = SystemRandomNumberGenerator()
        var bytes = [UInt8](repeating: 0, count: 24)
        for index in bytes.indices {
            bytes[index] = alphabet[Int(generator.next(upperBound: UInt8(alphabet.count)))]
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Replaces `id` and `model` in a response object, leaving everything else as the upstream sent it.
    public func stamp(_ object: inout JSONObject, endpoint: Endpoint) {
        if endpoint.stampsID { object["id"] = .string(id) }
        object["model"] = .string(model)
    }
}
