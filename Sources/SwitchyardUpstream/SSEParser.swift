/// Incremental parser of a `text/event-stream` body into the `data` payloads of its events
/// (WHATWG rules: lines end in LF, CRLF or CR; `data:` lines of one event join with LF; comments and
/// other fields are ignored). Bytes arrive in arbitrary pieces.
public struct SSEParser: Sendable {
    private var line: [UInt8] = []
    private var data: [UInt8] = []
    private var hasData = false
    private var lastWasCR = false

    public init() {}

    /// Feeds the next piece of the body, calling `emit` with each event's payload as it completes.
    public mutating func feed(_ bytes: some Sequence<UInt8>, emit: ([UInt8]) throws -> Void) rethrows {
        for byte in bytes {
            if lastWasCR {
                lastWasCR = false
                if byte == 0x0A { continue }
            }
            switch byte {
            case 0x0A:
                try endLine(emit)
            case 0x0D:
                lastWasCR = true
                try endLine(emit)
            default:
                line.append(byte)
            }
        }
    }

    /// The last event when a body ends without its closing blank line.
    public mutating func finish(emit: ([UInt8]) throws -> Void) rethrows {
        if !line.isEmpty { try endLine(emit) }
        try endLine(emit)
    }

    private mutating func endLine(_ emit: ([UInt8]) throws -> Void) rethrows {
        defer { line.removeAll(keepingCapacity: true) }
        if line.isEmpty {
            if hasData {
                let payload = data
                data.removeAll(keepingCapacity: true)
                hasData = false
                try emit(payload)
            }
            return
        }
        if line.first == UInt8(ascii: ":") { return }
        let colon = line.firstIndex(of: UInt8(ascii: ":")) ?? line.endIndex
        guard line[..<colon].elementsEqual("data".utf8) else { return }
        var valueStart = colon < line.endIndex ? colon + 1 : colon
        if valueStart < line.endIndex, line[valueStart] == UInt8(ascii: " ") { valueStart += 1 }
        if hasData { data.append(0x0A) }
        data.append(contentsOf: line[valueStart...])
        hasData = true
    }

    public static func isDone(_ payload: [UInt8]) -> Bool {
        payload.elementsEqual("[DONE]".utf8)
    }
}
