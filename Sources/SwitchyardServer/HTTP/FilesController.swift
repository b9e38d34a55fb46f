import Hummingbird
import NIOCore
import SwitchyardCore

/// `/v1/files`: uploads for vision and user data, in OpenAI's shapes, each visible only to its account.
struct FilesController: Sendable {
    let uploads: Uploads
    let authenticator: Authenticator
    let relay: Relay

    func addRoutes(to router: Router<GatewayRequestContext>) {
        router.post("v1/files") { request, _ in
            let caller = try await authenticator.authenticate(request.bearerToken)
            // The form around the file may add a little to it.
            let limit = uploads.settings.maxBytes + 64 * 1024
            let bytes: [UInt8]
            do {
                bytes = try await relay.readBody(request, limit: limit)
            } catch let error as GatewayError where error.httpStatus == 413 {
                throw Uploads.tooLarge(uploads.settings.maxBytes)
            }
            guard let contentType = request.headers[.contentType], let boundary = MultipartForm.boundary(ofContentType: contentType)
            else {
                throw GatewayError(
                    status: 400, message: "Upload files as multipart/form-data with 'file' and 'purpose'.",
                    type: "invalid_request_error", code: "invalid_content_type")
            }
            let form = try MultipartForm.parse(bytes, boundary: boundary)
            let file = try await uploads.create(form: form, accountID: caller.account.id)
            return Relay.json(Self.object(file))
        }
        router.get("v1/files") { request, _ in
            let caller = try await authenticator.authenticate(request.bearerToken)
            let purpose = request.uri.queryParameters.get("purpose")
            let limit = request.uri.queryParameters.get("limit").flatMap(Int.init).map { min(max($0, 1), 10_000) } ?? 10_000
            let files = try await uploads.store.files(
                accountID: caller.account.id, purpose: purpose, now: uploads.now, limit: limit + 1)
            return Relay.json([
                "object": "list", "data": .array(files.prefix(limit).map { .object(Self.object($0)) }),
                "first_id": files.first.map { .string($0.id) } ?? .null,
                "last_id": files.prefix(limit).last.map { .string($0.id) } ?? .null, "has_more": .bool(files.count > limit),
            ])
        }
        router.get("v1/files/{id}") { request, context in
            let caller = try await authenticator.authenticate(request.bearerToken)
            let id = try context.parameters.require("id")
            guard let file = try await uploads.store.file(id: id, accountID: caller.account.id, now: uploads.now) else {
                throw Uploads.notFound(id)
            }
            return Relay.json(Self.object(file))
        }
        router.delete("v1/files/{id}") { request, context in
            let caller = try await authenticator.authenticate(request.bearerToken)
            let id = try context.parameters.require("id")
            guard try await uploads.store.deleteFile(id: id, accountID: caller.account.id) else { throw Uploads.notFound(id) }
            return Relay.json(["id": .string(id), "object": "file", "deleted": true])
        }
        router.get("v1/files/{id}/content") { request, context in
            let caller = try await authenticator.authenticate(request.bearerToken)
            let id = try context.parameters.require("id")
            guard let (file, bytes) = try await uploads.store.fileContent(id: id, accountID: caller.account.id, now: uploads.now)
            else { throw Uploads.notFound(id) }
            return Response(
                status: .ok, headers: [.contentType: file.mediaType, .cacheControl: "no-store"],
                body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
        }
    }

    /// OpenAI's File object.
    static func object(_ file: StoredFile) -> JSONObject {
        [
            "id": .string(file.id), "object": "file", "bytes": .int(file.bytes), "created_at": .int(Int(file.createdAt)),
            "expires_at": .int(Int(file.expiresAt)), "filename": .string(file.filename), "purpose": .string(file.purpose),
            "status": "processed", "status_details": nil,
        ]
    }
}
