/// Media requests (images, speech, transcriptions) as `InferenceRequest`s: a multipart form's text
/// fields become the JSON `body` the rest of the gateway reads (`model`, `n`, `stream`, `size`…),
/// the form itself is kept to be forwarded exactly, and the request's worst case in media units is
/// worked out for its hold.
public enum MediaRequest {
    /// Fields of a multipart form read as numbers or booleans rather than text.
    static let integerFields: Set<String> = ["n", "partial_images"]
    static let booleanFields: Set<String> = ["stream"]
    static let numberFields: Set<String> = ["temperature", "speed"]

    /// A multipart request: `bytes` with `contentType`'s boundary. `modelOverride` (the seed path's
    /// model) replaces the form's `model`.
    public static func multipart(
        endpoint: Endpoint, bytes: [UInt8], contentType: String?, modelOverride: String? = nil
    ) throws(GatewayError) -> InferenceRequest {
        guard let contentType, contentType.lowercased().hasPrefix("multipart/form-data"),
            let boundary = MultipartForm.boundary(ofContentType: contentType)
        else {
            throw GatewayError(
                status: 400, message: "This endpoint takes multipart/form-data (a file upload).",
                type: "invalid_request_error", code: "invalid_content_type")
        }
        var form = try MultipartForm.parse(bytes, boundary: boundary)
        if let modelOverride, !modelOverride.isEmpty {
            form.parts.removeAll { $0.name == "model" }
            form.parts.insert(.init(name: "model", data: Array(modelOverride.utf8)), at: 0)
        }
        var body = JSONObject()
        for part in form.parts where part.filename == nil {
            guard let text = part.text else { continue }
            // One value a field (arrays say so, `image[]`): the upstream may read another copy than
            // the gateway would, and bill differently than it held.
            if body[part.name] != nil {
                guard part.name.hasSuffix("[]") else {
                    throw .invalidValue(part.name, "The form field '\(part.name)' is given more than once.")
                }
                continue
            }
            if integerFields.contains(part.name), let value = Int(text) {
                body[part.name] = .int(value)
            } else if booleanFields.contains(part.name), let value = Bool(text.lowercased()) {
                body[part.name] = .bool(value)
            } else if numberFields.contains(part.name), Double(text) != nil {
                body[part.name] = .number(text)
            } else {
                body[part.name] = .string(text)
            }
        }
        var request = try InferenceRequest(endpoint: endpoint, body: body)
        request.form = form
        request.mediaEstimate = try estimate(endpoint: endpoint, body: body, form: form)
        return request
    }

    /// A JSON media request (image generation, speech).
    public static func json(endpoint: Endpoint, bytes: [UInt8], modelOverride: String? = nil) throws(GatewayError)
        -> InferenceRequest
    {
        var request = try InferenceRequest(endpoint: endpoint, bytes: bytes, modelOverride: modelOverride)
        request.mediaEstimate = try estimate(endpoint: endpoint, body: request.body, form: nil)
        return request
    }

    /// `SIZE/QUALITY` of a request's images, as prices name them (`1024x1024/standard`).
    public static func imageKey(_ body: JSONObject) -> String {
        let size = body["size"]?.stringValue ?? "1024x1024"
        let quality = body["quality"]?.stringValue ?? "standard"
        return "\(size)/\(quality)"
    }

    static func estimate(endpoint: Endpoint, body: JSONObject, form: MultipartForm?) throws(GatewayError) -> MediaUsage {
        switch endpoint {
        case .imageGenerations, .imageEdits, .imageVariations:
            return MediaUsage(images: max(1, body["n"]?.intValue ?? 1), imageKey: imageKey(body))
        case .speech:
            return MediaUsage(characters: body["input"]?.stringValue?.unicodeScalars.count ?? 0)
        case .transcriptions, .translations:
            guard let file = form?["file"], file.filename != nil || !file.data.isEmpty else {
                throw .missingParameter("file")
            }
            return MediaUsage(audioMillis: AudioDuration.seconds(of: file.data).map(AudioDuration.millis) ?? 0)
        default:
            return .none
        }
    }

    static func validateImageCount(_ body: JSONObject) throws(GatewayError) {
        guard let n = body["n"]?.intValue else { return }
        guard (1...10).contains(n) else { throw .invalidValue("n", "Invalid 'n': expected an integer from 1 to 10.") }
    }
}
