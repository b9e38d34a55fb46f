import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import SwitchyardCore

/// The web console, served from the binary itself: `GET /` is its page, `GET /console/FILE` its
/// scripts, styles and images (`ConsoleAssets`, embedded from console/ at build time). A strict
/// Content-Security-Policy allows nothing but these files and calls to this origin: no inline
/// script or style, no other host — the console makes no request anywhere else.
struct ConsoleController: Sendable {
    static let policy =
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
        + "font-src 'self'; manifest-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

    /// Decoded once.
    static let files: [String: (contentType: String, bytes: ByteBuffer)] = ConsoleAssets.files.compactMapValues { file in
        Data(base64Encoded: file.base64).map { (file.contentType, ByteBuffer(bytes: [UInt8]($0))) }
    }

    func addRoutes(to router: Router<GatewayRequestContext>) {
        router.get("/") { _, _ in try Self.serve("index.html") }
        router.get("console/**") { request, _ in
            let path = String(request.uri.path.dropFirst("/console/".count))
            return try Self.serve(path)
        }
    }

    /// `SWITCHYARD_CONSOLE_DIR`: serve the console from that folder instead of the embedded copy, so
    /// its files can be edited and reloaded without rebuilding (development only).
    static let directory = ProcessInfo.processInfo.environment["SWITCHYARD_CONSOLE_DIR"].flatMap { $0.isEmpty ? nil : $0 }

    static func file(_ path: String) -> (contentType: String, bytes: ByteBuffer)? {
        guard let directory else { return files[path] }
        guard let data = FileManager.default.contents(atPath: directory + "/" + path) else { return nil }
        let types = [
            "html": "text/html; charset=utf-8", "js": "text/javascript; charset=utf-8", "css": "text/css; charset=utf-8",
            "svg": "image/svg+xml", "png": "image/png", "ico": "image/x-icon", "json": "application/json",
        ]
        guard let type = types[String(path.split(separator: ".").last ?? "")] else { return nil }
        return (type, ByteBuffer(bytes: [UInt8](data)))
    }

    static func serve(_ path: String) throws -> Response {
        guard !path.contains(".."), !path.hasPrefix("/"), let file = file(path) else {
            throw GatewayError.notFound("/console/" + path)
        }
        var headers = HTTPFields()
        headers[.contentType] = file.contentType
        headers[.cacheControl] = "no-cache"
        for (name, value) in [
            ("content-security-policy", policy), ("x-content-type-options", "nosniff"), ("referrer-policy", "no-referrer"),
            ("x-frame-options", "DENY"),
        ] {
            if let field = HTTPField.Name(name) { headers[field] = value }
        }
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: file.bytes))
    }
}
