import Foundation

/// A `multipart/form-data` body (RFC 7578): the fields and files of an upload, read from a client and
/// written to an upstream byte for byte as the parts came (names, file names, content types, data).
public struct MultipartForm: Sendable, Equatable {
    public struct Part: Sendable, Equatable {
        public var name: String
        public var filename: String?
        public var contentType: String?
        public var data: [UInt8]

        public init(name: String, filename: String? = nil, contentType: String? = nil, data: [UInt8]) {
            self.name = name
            self.filename = filename
            self.contentType = contentType
            self.data = data
        }

        /// The part's data as text (a form field).
        public var text: String? { String(validating: data, as: UTF8.self) }
    }

    public var parts: [Part]

    public init(parts: [Part]) {
        self.parts = parts
    }

    /// The first part named `name`.
    public subscript(_ name: String) -> Part? { parts.first { $0.name == name } }

    /// The boundary of a `content-type: multipart/form-data; boundary=…` header value.
    public static func boundary(ofContentType value: String) -> String? {
        let pieces = value.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces) }
        guard pieces.first?.lowercased() == "multipart/form-data" else { return nil }
        for piece in pieces.dropFirst() where piece.lowercased().hasPrefix("boundary=") {
            var boundary = String(piece.dropFirst("boundary=".count))
            if boundary.hasPrefix("\""), boundary.hasSuffix("\""), boundary.count >= 2 {
                boundary = String(boundary.dropFirst().dropLast())
            }
            return boundary.isEmpty || boundary.utf8.count > 70 ? nil : boundary
        }
        return nil
    }

    /// Parses a body with the given boundary; throws a 400 that says what is wrong.
    public static func parse(_ body: [UInt8], boundary: String) throws(GatewayError) -> MultipartForm {
        let delimiter = Array("--\(boundary)".utf8)
        guard var cursor = find(delimiter, in: body, from: 0) else { throw malformed("no part boundary found") }
        cursor += delimiter.count
        var parts: [Part] = []
        while true {
            // After a delimiter: "--" ends the body, CRLF starts a part.
            if body[cursor...].starts(with: [0x2D, 0x2D]) { break }
            guard body[cursor...].starts(with: [0x0D, 0x0A]) else { throw malformed("a boundary is not followed by CRLF") }
            cursor += 2
            guard let headerEnd = find([0x0D, 0x0A, 0x0D, 0x0A], in: body, from: cursor) else {
                throw malformed("a part has no end of headers")
            }
            let headers = String(decoding: body[cursor..<headerEnd], as: UTF8.self)
            let dataStart = headerEnd + 4
            guard let next = find([0x0D, 0x0A] + delimiter, in: body, from: dataStart) else {
                throw malformed("a part is not closed by the boundary")
            }
            var part = Part(name: "", data: Array(body[dataStart..<next]))
            for line in headers.split(separator: "\r\n") {
                guard let colon = line.firstIndex(of: ":") else { continue }
                let name = line[..<colon].lowercased()
                let value = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
                if name == "content-disposition" {
                    part.name = parameter("name", in: value) ?? ""
                    part.filename = parameter("filename", in: value)
                } else if name == "content-type" {
                    part.contentType = value
                }
            }
            guard !part.name.isEmpty else { throw malformed("a part has no name") }
            parts.append(part)
            cursor = next + 2 + delimiter.count
            guard cursor <= body.count - 2 else { throw malformed("the body ends without a closing boundary") }
        }
        return MultipartForm(parts: parts)
    }

    /// The body, framed with `boundary`.
    public func encoded(boundary: String) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(parts.reduce(256) { $0 + $1.data.count + 128 })
        for part in parts {
            out += Array("--\(boundary)\r\ncontent-disposition: form-data; name=\"\(Self.quoted(part.name))\"".utf8)
            if let filename = part.filename { out += Array("; filename=\"\(Self.quoted(filename))\"".utf8) }
            out += [0x0D, 0x0A]
            if let type = part.contentType { out += Array("content-type: \(type)\r\n".utf8) }
            out += [0x0D, 0x0A]
            out += part.data
            out += [0x0D, 0x0A]
        }
        out += Array("--\(boundary)--\r\n".utf8)
        return out
    }

    private static func quoted(_ text: String) -> String {
        text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
            .replacingOccurrences(of: "\r", with: "").replacingOccurrences(of: "\n", with: "")
    }

    /// `name="value"` (or unquoted) in a header value.
    private static func parameter(_ name: String, in value: String) -> String? {
        for piece in value.split(separator: ";").dropFirst() {
            let trimmed = piece.trimmingCharacters(in: .whitespaces)
            guard trimmed.lowercased().hasPrefix(name + "=") else { continue }
            var raw = Substring(trimmed.dropFirst(name.count + 1))
            if raw.hasPrefix("\""), raw.hasSuffix("\""), raw.count >= 2 { raw = raw.dropFirst().dropLast() }
            return raw.replacingOccurrences(of: "\\\"", with: "\"").replacingOccurrences(of: "\\\\", with: "\\")
        }
        return nil
    }

    private static func find(_ needle: [UInt8], in haystack: [UInt8], from start: Int) -> Int? {
        guard !needle.isEmpty, haystack.count >= needle.count, start <= haystack.count - needle.count else { return nil }
        var index = start
        let last = haystack.count - needle.count
        while index <= last {
            if haystack[index] == needle[0] && haystack[index..<(index + needle.count)].elementsEqual(needle) {
                return index
            }
            index += 1
        }
        return nil
    }

    private static func malformed(_ detail: String) -> GatewayError {
        GatewayError(
            status: 400, message: "The multipart/form-data body is malformed: \(detail).", type: "invalid_request_error",
            code: "invalid_value")
    }
}
