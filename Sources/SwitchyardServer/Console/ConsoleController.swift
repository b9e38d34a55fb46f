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

    static func serve(_ path: String) throws -> Response {
        guard !path.contains(".."), let file = files[path] else { throw GatewayError.notFound("/console/" + path) }
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
