import Logging
import ServiceLifecycle
import SwitchyardCore

/// Uploads (`POST /v1/files`): checked (size, type sniffed from the bytes, purpose), kept for their
/// account until they expire (`files.retention`, or sooner when asked), and turned into data URLs
/// where a chat message names one, so an OpenAI-compatible upstream gets the image itself.
struct Uploads: Sendable {
    let store: any FileStore
    let settings: Config.Files
    let clock: any GatewayClock

    static let purposes = ["vision", "user_data"]

    var now: Int64 { clock.unixSeconds }

    /// Checks and keeps an upload; nothing is kept when it is refused.
    func create(form: MultipartForm, accountID: String) async throws -> StoredFile {
        guard let purpose = form["purpose"]?.text, !purpose.isEmpty else { throw GatewayError.missingParameter("purpose") }
        guard Self.purposes.contains(purpose) else {
            throw GatewayError.invalidValue(
                "purpose", "Invalid value for 'purpose': '\(purpose)'. Expected 'vision' or 'user_data'.")
        }
        guard let file = form["file"], file.filename != nil || !file.data.isEmpty else {
            throw GatewayError.missingParameter("file")
        }
        guard file.data.count <= settings.maxBytes else { throw Self.tooLarge(settings.maxBytes) }
        guard !file.data.isEmpty else {
            throw GatewayError(status: 400, message: "The file is empty.", type: "invalid_request_error", param: "file", code: "invalid_file_type")
        }
        guard let type = MediaSniffer.sniff(file.data) else {
            throw Self.invalidType("its bytes are none of the accepted types", purpose: purpose)
        }
        if purpose == "vision" && !type.isImage {
            throw Self.invalidType("it is \(type.name)", purpose: purpose)
        }
        var lifetime = Int64(settings.retention.components.seconds)
        if let seconds = form["expires_after[seconds]"]?.text.flatMap(Int64.init) {
            guard seconds > 0 else {
                throw GatewayError.invalidValue("expires_after.seconds", "Invalid 'expires_after.seconds': expected a positive integer.")
            }
            lifetime = min(lifetime, seconds)
        }
        let created = now
        let kept = try await store.files(accountID: accountID, purpose: nil, now: created, limit: settings.maxPerAccount)
        guard kept.count < settings.maxPerAccount else {
            throw GatewayError(
                status: 429,
                message: "This account keeps \(settings.maxPerAccount) uploads already: delete one or wait for one to expire.",
                type: "rate_limit_exceeded", param: "file", code: "too_many_files")
        }
        let stored = StoredFile(
            id: "file-" + ResponseIdentity.randomID(), accountID: accountID,
            filename: Self.safeName(file.filename ?? "upload.\(type.fileExtension)"), purpose: purpose,
            mediaType: type.mimeType, bytes: file.data.count, createdAt: created, expiresAt: created + lifetime)
        try await store.saveFile(stored, content: file.data)
        return stored
    }

    static func tooLarge(_ limit: Int) -> GatewayError {
        GatewayError(
            status: 413, message: "The file is larger than this gateway accepts (\(limit) bytes).",
            type: "invalid_request_error", param: "file", code: "file_too_large")
    }

    static func invalidType(_ detail: String, purpose: String) -> GatewayError {
        let accepted =
            purpose == "vision"
            ? "PNG, JPEG, GIF or WebP images" : "images, PDF, UTF-8 text or WAV, MP3, FLAC or Ogg audio"
        return GatewayError(
            status: 400, message: "This file cannot be used for '\(purpose)': \(detail); it accepts \(accepted).",
            type: "invalid_request_error", param: "file", code: "invalid_file_type")
    }

    /// A file name as it is shown back: its last path component, at most 255 characters.
    static func safeName(_ name: String) -> String {
        let last = name.split(whereSeparator: { $0 == "/" || $0 == "\\" }).last.map(String.init) ?? "upload"
        return String(last.prefix(255))
    }

    static func notFound(_ id: String, param: String? = nil) -> GatewayError {
        GatewayError(
            status: 404, message: "No such file: '\(id)'.", type: "invalid_request_error", param: param, code: "not_found")
    }

    /// Replaces every reference to an upload in a chat request's messages — an `image_url` whose url
    /// is a file id, a `file` part with `file_id` — by the file's bytes as a data URL. Returns the ids
    /// used. Another account's file, or one that expired, is a 404.
    @discardableResult
    func resolve(_ inference: inout InferenceRequest, accountID: String) async throws -> [String] {
        guard inference.endpoint == .chatCompletions, var messages = inference.body["messages"]?.arrayValue,
            Self.mentionsFiles(messages)
        else { return [] }
        var used: [String] = []
        // Each upload is read and encoded once, however often it is named, and what one request may
        // carry is bounded: a short body naming one big upload many times must not grow without end.
        var encoded: [String: (StoredFile, String)] = [:]
        var carried = 0
        let limit = max(settings.maxBytes, 1) * 4
        func dataURL(_ id: String, param: String, image: Bool) async throws -> (StoredFile, String) {
            if let known = encoded[id] {
                carried += known.0.bytes
                guard carried <= limit else { throw Self.tooMuch(limit) }
                return known
            }
            let (file, bytes) = try await content(id, accountID: accountID, param: param)
            if image, MediaSniffer.sniff(bytes)?.isImage != true {
                throw GatewayError.invalidValue(param, "The file '\(id)' is not an image.")
            }
            carried += bytes.count
            guard carried <= limit else { throw Self.tooMuch(limit) }
            let url = Base64.dataURL(bytes, mediaType: file.mediaType)
            encoded[id] = (file, url)
            return (file, url)
        }
        for (index, message) in messages.enumerated() {
            guard case .object(var object) = message, var parts = object["content"]?.arrayValue else { continue }
            for (partIndex, part) in parts.enumerated() {
                guard case .object(var partObject) = part else { continue }
                let param = "messages[\(index)].content[\(partIndex)]"
                if partObject["type"] == "image_url", var image = partObject["image_url"]?.objectValue,
                    let url = image["url"]?.stringValue, url.hasPrefix("file-")
                {
                    let (_, data) = try await dataURL(url, param: param, image: true)
                    image["url"] = .string(data)
                    partObject["image_url"] = .object(image)
                    used.append(url)
                } else if partObject["type"] == "file", var fileObject = partObject["file"]?.objectValue,
                    let id = fileObject["file_id"]?.stringValue
                {
                    let (file, data) = try await dataURL(id, param: param, image: false)
                    fileObject["file_id"] = nil
                    fileObject["file_data"] = .string(data)
                    if fileObject["filename"] == nil { fileObject["filename"] = .string(file.filename) }
                    partObject["file"] = .object(fileObject)
                    used.append(id)
                } else {
                    continue
                }
                parts[partIndex] = .object(partObject)
            }
            object["content"] = .array(parts)
            messages[index] = .object(object)
        }
        inference.body["messages"] = .array(messages)
        return used
    }

    static func tooMuch(_ limit: Int) -> GatewayError {
        GatewayError(
            status: 413, message: "The uploads this request names come to more than \(limit) bytes.",
            type: "invalid_request_error", code: "request_too_large")
    }

    private func content(_ id: String, accountID: String, param: String) async throws -> (StoredFile, [UInt8]) {
        guard let found = try await store.fileContent(id: id, accountID: accountID, now: now) else {
            throw Self.notFound(id, param: param)
        }
        return found
    }

    /// A cheap look for anything to resolve, so requests without uploads pay nothing.
    static func mentionsFiles(_ messages: [JSONValue]) -> Bool {
        messages.contains { message in
            message["content"]?.arrayValue?.contains { part in
                part["image_url"]?["url"]?.stringValue?.hasPrefix("file-") == true || part["file"]?["file_id"] != nil
            } ?? false
        }
    }

    /// Deletes files after the request that used them settled (`files.delete_after_use`).
    func deleteAfterUse(_ ids: [String], accountID: String, logger: Logger) {
        guard settings.deleteAfterUse, !ids.isEmpty else { return }
        let store = self.store
        Task {
            for id in Set(ids) {
                do {
                    _ = try await store.deleteFile(id: id, accountID: accountID)
                } catch {
                    logger.warning("could not delete a used upload", metadata: ["error.type": "\(type(of: error))"])
                }
            }
        }
    }
}

/// Deletes expired uploads: at start, then every minute (or every `retention`, when shorter).
struct UploadSweeper: Service {
    let store: any FileStore
    let retention: Duration
    let clock: any GatewayClock
    let logger: Logger

    func run() async throws {
        let interval = min(retention, .seconds(60))
        while !Task.isCancelledOrShuttingDown {
            do {
                let deleted = try await store.deleteExpiredFiles(now: clock.unixSeconds)
                if deleted > 0 { logger.info("expired uploads deleted", metadata: ["files.deleted": "\(deleted)"]) }
            } catch {
                logger.warning("could not delete expired uploads", metadata: ["error.type": "\(type(of: error))"])
            }
            try? await gracefulShutdownSleep(interval)
        }
    }

    private func gracefulShutdownSleep(_ duration: Duration) async throws {
        try await cancelWhenGracefulShutdown { try await Task.sleep(for: duration) }
    }
}

extension Task where Success == Never, Failure == Never {
    static var isCancelledOrShuttingDown: Bool { Task.isCancelled || Task.isShuttingDownGracefully }
}
