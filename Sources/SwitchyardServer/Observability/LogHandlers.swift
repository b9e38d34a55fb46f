import Foundation
import Logging
import SwitchyardCore

/// Writes each log event as one line on standard error (or to `output`), in the configured format:
///
/// - `text`: `2026-11-21T10:00:00.123Z info switchyard: request account=acme method=POST …`, the
///   metadata sorted by key, a value with spaces, quotes or `=` quoted, control characters escaped in
///   the message and every value;
/// - `json`: `{"ts":"2026-11-21T10:00:00.123Z","level":"info","logger":"switchyard","msg":"request",…}`
///   with the metadata as top-level fields; integers, decimals and booleans stay numbers and booleans.
///
/// Either way no value can break its line or forge another.
public struct LineLogHandler: LogHandler {
    public var logLevel: Logger.Level
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?
    private let label: String
    private let format: Config.LogFormat
    private let output: LogOutput

    public init(label: String, format: Config.LogFormat, level: Logger.Level, output: LogOutput = .standardError) {
        self.label = label
        self.format = format
        self.logLevel = level
        self.output = output
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var fields: Logger.Metadata
        if metadata.isEmpty && metadataProvider == nil {
            // The request line's case: its own metadata only, used as it is rather than copied.
            fields = event.metadata ?? [:]
        } else {
            fields = metadata
            if let provided = metadataProvider?.get() { fields.merge(provided) { $1 } }
            if let explicit = event.metadata { fields.merge(explicit) { $1 } }
        }
        if let error = event.error, fields["error.type"] == nil {
            fields["error.type"] = .string(String(describing: type(of: error)))
        }
        let sorted = fields.sorted { $0.key < $1.key }
        switch format {
        case .json: output.write(jsonLine(event, sorted))
        case .text: output.write(textLine(event, sorted))
        }
    }

    private func jsonLine(_ event: LogEvent, _ fields: [(key: String, value: Logger.MetadataValue)]) -> [UInt8] {
        var object = JSONObject([
            "ts": .string(Self.timestamp()), "level": .string(event.level.rawValue), "logger": .string(label),
            "msg": .string(event.message.description),
        ])
        object.members.reserveCapacity(4 + fields.count)
        for (key, value) in fields where !Self.reserved.contains(key) {
            object.members.append(.init(key, Self.json(value)))
        }
        var line = object.serialized()
        line.append(UInt8(ascii: "\n"))
        return line
    }

    /// Written into one byte buffer: no temporary strings for the separators, the quoting or the
    /// timestamp (the request line has twenty-odd fields).
    private func textLine(_ event: LogEvent, _ fields: [(key: String, value: Logger.MetadataValue)]) -> [UInt8] {
        var line = [UInt8]()
        line.reserveCapacity(160 + 40 * fields.count)
        Self.appendTimestamp(to: &line)
        line.append(UInt8(ascii: " "))
        line.append(contentsOf: event.level.rawValue.utf8)
        line.append(UInt8(ascii: " "))
        line.append(contentsOf: label.utf8)
        line.append(contentsOf: ": ".utf8)
        line.append(contentsOf: LogSafe.text(event.message.description, limit: 4096).utf8)
        for (key, value) in fields {
            line.append(UInt8(ascii: " "))
            line.append(contentsOf: key.utf8)
            line.append(UInt8(ascii: "="))
            Self.appendQuoted(LogSafe.text(value.description, limit: 1024), to: &line)
        }
        line.append(UInt8(ascii: "\n"))
        return line
    }

    /// The JSON line's own keys, which metadata cannot override.
    static let reserved: Set<String> = ["ts", "level", "logger", "msg"]

    static func json(_ value: Logger.MetadataValue) -> JSONValue {
        switch value {
        case .string(let text): return .string(text)
        case .stringConvertible(let convertible):
            switch convertible {
            case let bool as Bool: return .bool(bool)
            case let int as Int: return .int(int)
            case let int as Int64: return .int(Int(int))
            case let double as Double where double.isFinite: return .number(String(double))
            default: return .string(convertible.description)
            }
        case .array(let values): return .array(values.map(json))
        case .dictionary(let values):
            var object = JSONObject()
            for (key, value) in values.sorted(by: { $0.key < $1.key }) { object[key] = json(value) }
            return .object(object)
        }
    }

    /// The value as it is, or in double quotes (inner quotes escaped) when it is empty or holds a
    /// space, a quote or `=`.
    static func appendQuoted(_ text: String, to line: inout [UInt8]) {
        let utf8 = text.utf8
        let plain = !utf8.isEmpty
            && !utf8.contains { $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "=") }
        if plain { return line.append(contentsOf: utf8) }
        line.append(UInt8(ascii: "\""))
        for byte in utf8 {
            if byte == UInt8(ascii: "\"") { line.append(UInt8(ascii: "\\")) }
            line.append(byte)
        }
        line.append(UInt8(ascii: "\""))
    }

    /// UTC, millisecond precision, ISO 8601.
    static func timestamp() -> String {
        var bytes = [UInt8]()
        appendTimestamp(to: &bytes)
        return String(decoding: bytes, as: UTF8.self)
    }

    /// `2026-11-21T10:00:00.123Z`, written digit by digit.
    static func appendTimestamp(to line: inout [UInt8]) {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        var seconds = now.tv_sec
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func digits(_ value: Int, _ width: Int) {
            var divisor = 1
            for _ in 1..<width { divisor *= 10 }
            var rest = value
            while divisor > 0 {
                line.append(UInt8(ascii: "0") + UInt8((rest / divisor) % 10))
                rest %= divisor
                divisor /= 10
            }
        }
        digits(Int(parts.tm_year) + 1900, 4)
        line.append(UInt8(ascii: "-"))
        digits(Int(parts.tm_mon) + 1, 2)
        line.append(UInt8(ascii: "-"))
        digits(Int(parts.tm_mday), 2)
        line.append(UInt8(ascii: "T"))
        digits(Int(parts.tm_hour), 2)
        line.append(UInt8(ascii: ":"))
        digits(Int(parts.tm_min), 2)
        line.append(UInt8(ascii: ":"))
        digits(Int(parts.tm_sec), 2)
        line.append(UInt8(ascii: "."))
        digits(Int(now.tv_nsec / 1_000_000), 3)
        line.append(UInt8(ascii: "Z"))
    }
}

/// Where log lines go: standard error (one `write` per line, so concurrent lines never interleave),
/// or a closure (tests).
public struct LogOutput: Sendable {
    let write: @Sendable ([UInt8]) -> Void

    public init(_ write: @escaping @Sendable ([UInt8]) -> Void) {
        self.write = write
    }

    public static let standardError = LogOutput { line in
        line.withUnsafeBytes { buffer in
            guard let base = buffer.baseAddress else { return }
            var offset = 0
            while offset < buffer.count {
                let written = Foundation.write(STDERR_FILENO, base + offset, buffer.count - offset)
                if written <= 0 { return }
                offset += written
            }
        }
    }
}
