/// One pass over the bytes of a chat or text completion stream chunk, building no tree: where the
/// top-level `id`, `model` and `usage` are, and per choice its index, finish reason and how many bytes
/// of output it carries. `StreamRelay` rewrites the chunk from it at the byte level — the `id` and
/// `model` values replaced, `usage` dropped when the client did not ask for it, everything else as
/// the upstream sent it — which is what makes relaying a chunk cost a few microseconds instead of a
/// parse, an edit and a serialisation.
///
/// It validates the whole chunk as JSON, and gives up (nil) on anything unusual, for the tree to
/// handle as before: a line break (SSE framing), an `error` member, a repeated or escaped key it
/// reads, tool calls, escaped finish reasons, lone surrogates, deep nesting, invalid JSON.
public struct ChunkScan: Sendable, Equatable {
    /// A top-level member: its key's opening quote, its value, and where the next member's key starts
    /// (nil for the last one).
    public struct Member: Sendable, Equatable {
        public var keyStart: Int
        public var value: Range<Int>
        public var nextKeyStart: Int?
    }

    public struct Choice: Sendable, Equatable {
        public var index: Int
        /// nil when absent or null.
        public var finishReason: String?
        /// UTF-8 bytes of text, content, refusal and reasoning content, as decoded.
        public var outputBytes: Int
    }

    public var id: Member?
    public var model: Member?
    public var usage: Member?
    public var choices: [Choice] = []
    /// Whether `choices` was present (as an array).
    public var hasChoices = false
    /// The top-level object's members, and the offset of its closing brace.
    public var memberCount = 0
    public var objectEnd = 0
    /// The member before `usage`, if any (for removing it with the comma before it).
    public var beforeUsage: Member?

    static let maxDepth = 64

    public static func scan(_ bytes: [UInt8]) -> ChunkScan? {
        bytes.withUnsafeBufferPointer { buffer in
            var scanner = Scanner(bytes: buffer)
            return scanner.chunk()
        }
    }
}

private struct Scanner {
    let bytes: UnsafeBufferPointer<UInt8>
    var position = 0

    init(bytes: UnsafeBufferPointer<UInt8>) {
        self.bytes = bytes
    }

    struct GiveUp: Error {}

    /// Records a key the scan reads (`which`, one bit; 0 for a key it skips): one that comes twice
    /// is left to the full parse.
    static func note(_ which: UInt8, in seen: inout UInt8) throws {
        guard which != 0 else { return }
        if seen & which != 0 { throw GiveUp() }
        seen |= which
    }

    mutating func chunk() -> ChunkScan? {
        do {
            var result = ChunkScan()
            skipSpace()
            try expect(UInt8(ascii: "{"))
            var previous: ChunkScan.Member?
            var seen: UInt8 = 0
            skipSpace()
            if peek() == UInt8(ascii: "}") {
                result.objectEnd = position
                position += 1
            } else {
                while true {
                    skipSpace()
                    let keyStart = position
                    let key = try plainString()
                    skipSpace()
                    try expect(UInt8(ascii: ":"))
                    skipSpace()
                    let valueStart = position
                    let which = Self.topKey(key)
                    try Self.note(which, in: &seen)
                    switch which {
                    case Self.choicesKey:
                        if peek() == UInt8(ascii: "n") {
                            try literal("null")
                        } else {
                            result.choices = try choices()
                            result.hasChoices = true
                        }
                    case Self.errorKey:
                        throw GiveUp()
                    default:
                        try skipValue(depth: 1)
                    }
                    var member = ChunkScan.Member(keyStart: keyStart, value: valueStart..<position, nextKeyStart: nil)
                    skipSpace()
                    let more = peek() == UInt8(ascii: ",")
                    if more {
                        position += 1
                        skipSpace()
                        member.nextKeyStart = position
                    }
                    switch which {
                    case Self.idKey: result.id = member
                    case Self.modelKey: result.model = member
                    case Self.usageKey:
                        result.usage = member
                        result.beforeUsage = previous
                    default: break
                    }
                    // A member already recorded learns where the next one starts.
                    if let last = previous, last.nextKeyStart != nil {
                        _ = last
                    }
                    previous = member
                    result.memberCount += 1
                    if !more { break }
                }
                skipSpace()
                guard peek() == UInt8(ascii: "}") else { throw GiveUp() }
                result.objectEnd = position
                position += 1
            }
            skipSpace()
            guard position == bytes.count else { throw GiveUp() }
            return result
        } catch {
            return nil
        }
    }

    static let idKey: UInt8 = 1
    static let modelKey: UInt8 = 2
    static let usageKey: UInt8 = 4
    static let choicesKey: UInt8 = 8
    static let errorKey: UInt8 = 16

    static func topKey(_ key: UnsafeBufferPointer<UInt8>.SubSequence) -> UInt8 {
        switch key.count {
        case 2: return key.elementsEqual("id".utf8) ? idKey : 0
        case 5:
            if key.elementsEqual("model".utf8) { return modelKey }
            if key.elementsEqual("usage".utf8) { return usageKey }
            if key.elementsEqual("error".utf8) { return errorKey }
            return 0
        case 7: return key.elementsEqual("choices".utf8) ? choicesKey : 0
        default: return 0
        }
    }

    // MARK: choices

    mutating func choices() throws -> [ChunkScan.Choice] {
        try expect(UInt8(ascii: "["))
        var list: [ChunkScan.Choice] = []
        try elements { scanner in list.append(try scanner.choice()) }
        return list
    }

    mutating func choice() throws -> ChunkScan.Choice {
        try expect(UInt8(ascii: "{"))
        var choice = ChunkScan.Choice(index: 0, finishReason: nil, outputBytes: 0)
        var seen: UInt8 = 0
        try members { scanner, key in
            let which: UInt8
            switch key.count {
            case 4 where key.elementsEqual("text".utf8): which = 1
            case 5 where key.elementsEqual("index".utf8): which = 2
            case 5 where key.elementsEqual("delta".utf8): which = 4
            case 13 where key.elementsEqual("finish_reason".utf8): which = 8
            default: which = 0
            }
            try Self.note(which, in: &seen)
            switch which {
            case 1: choice.outputBytes += try scanner.optionalStringLength()
            case 2: choice.index = try scanner.integer()
            case 4: choice.outputBytes += try scanner.delta()
            case 8: choice.finishReason = try scanner.optionalPlainString()
            default: try scanner.skipValue(depth: 3)
            }
        }
        return choice
    }

    /// The output bytes of a delta; tool calls are left to the tree.
    mutating func delta() throws -> Int {
        if peek() == UInt8(ascii: "n") {
            try literal("null")
            return 0
        }
        try expect(UInt8(ascii: "{"))
        var total = 0
        var seen: UInt8 = 0
        try members { scanner, key in
            let which: UInt8
            switch key.count {
            case 7 where key.elementsEqual("content".utf8): which = 1
            case 7 where key.elementsEqual("refusal".utf8): which = 2
            case 17 where key.elementsEqual("reasoning_content".utf8): which = 4
            case 10 where key.elementsEqual("tool_calls".utf8): throw GiveUp()
            default: which = 0
            }
            if which != 0 {
                try Self.note(which, in: &seen)
                total += try scanner.optionalStringLength()
            } else {
                try scanner.skipValue(depth: 4)
            }
        }
        return total
    }

    /// Reads the members of an object whose `{` was read, through its `}`.
    mutating func members(_ body: (inout Scanner, UnsafeBufferPointer<UInt8>.SubSequence) throws -> Void) throws {
        skipSpace()
        if peek() == UInt8(ascii: "}") {
            position += 1
            return
        }
        while true {
            skipSpace()
            let key = try plainString()
            skipSpace()
            try expect(UInt8(ascii: ":"))
            skipSpace()
            try body(&self, key)
            skipSpace()
            if peek() == UInt8(ascii: ",") {
                position += 1
                continue
            }
            try expect(UInt8(ascii: "}"))
            return
        }
    }

    /// Reads the elements of an array whose `[` was read, through its `]`.
    mutating func elements(_ body: (inout Scanner) throws -> Void) throws {
        skipSpace()
        if peek() == UInt8(ascii: "]") {
            position += 1
            return
        }
        while true {
            skipSpace()
            try body(&self)
            skipSpace()
            if peek() == UInt8(ascii: ",") {
                position += 1
                continue
            }
            try expect(UInt8(ascii: "]"))
            return
        }
    }

    // MARK: values

    mutating func skipValue(depth: Int) throws {
        guard depth < ChunkScan.maxDepth else { throw GiveUp() }
        switch peek() {
        case UInt8(ascii: "\""): _ = try stringLength()
        case UInt8(ascii: "{"):
            position += 1
            try members { scanner, _ in try scanner.skipValue(depth: depth + 1) }
        case UInt8(ascii: "["):
            position += 1
            try elements { scanner in try scanner.skipValue(depth: depth + 1) }
        case UInt8(ascii: "t"): try literal("true")
        case UInt8(ascii: "f"): try literal("false")
        case UInt8(ascii: "n"): try literal("null")
        default: try number()
        }
    }

    /// A non-negative or negative integer that fits an `Int` (a choice's index).
    mutating func integer() throws -> Int {
        let start = position
        try number()
        var value = 0
        var negative = false
        for index in start..<position {
            let byte = bytes[index]
            if byte == UInt8(ascii: "-") && index == start {
                negative = true
                continue
            }
            guard byte >= 0x30 && byte <= 0x39, value < Int.max / 10 - 10 else { throw GiveUp() }
            value = value * 10 + Int(byte - 0x30)
        }
        return negative ? -value : value
    }

    /// JSON's number grammar.
    mutating func number() throws {
        if peek() == UInt8(ascii: "-") { position += 1 }
        guard let first = peek(), first >= 0x30 && first <= 0x39 else { throw GiveUp() }
        position += 1
        if first != 0x30 { skipDigits() }
        if peek() == UInt8(ascii: ".") {
            position += 1
            guard let digit = peek(), digit >= 0x30 && digit <= 0x39 else { throw GiveUp() }
            skipDigits()
        }
        if peek() == UInt8(ascii: "e") || peek() == UInt8(ascii: "E") {
            position += 1
            if peek() == UInt8(ascii: "+") || peek() == UInt8(ascii: "-") { position += 1 }
            guard let digit = peek(), digit >= 0x30 && digit <= 0x39 else { throw GiveUp() }
            skipDigits()
        }
    }

    mutating func skipDigits() {
        while position < bytes.count, bytes[position] >= 0x30 && bytes[position] <= 0x39 { position += 1 }
    }

    mutating func literal(_ text: StaticString) throws {
        let count = text.utf8CodeUnitCount
        guard position + count <= bytes.count else { throw GiveUp() }
        let expected = UnsafeBufferPointer(start: text.utf8Start, count: count)
        for index in 0..<count where bytes[position + index] != expected[index] { throw GiveUp() }
        position += count
    }

    /// A string without escapes, quotes excluded: a key (an escaped key could spell one this scan
    /// reads) or a finish reason.
    mutating func plainString() throws -> UnsafeBufferPointer<UInt8>.SubSequence {
        try expect(UInt8(ascii: "\""))
        let start = position
        while position < bytes.count {
            let byte = bytes[position]
            if byte == UInt8(ascii: "\"") {
                position += 1
                return bytes[start..<(position - 1)]
            }
            guard byte >= 0x20, byte != UInt8(ascii: "\\") else { throw GiveUp() }
            position += 1
        }
        throw GiveUp()
    }

    /// A string or null; the string's decoded UTF-8 length.
    mutating func optionalStringLength() throws -> Int {
        if peek() == UInt8(ascii: "n") {
            try literal("null")
            return 0
        }
        return try stringLength()
    }

    /// A string without escapes, or null.
    mutating func optionalPlainString() throws -> String? {
        if peek() == UInt8(ascii: "n") {
            try literal("null")
            return nil
        }
        return String(decoding: try plainString(), as: UTF8.self)
    }

    /// A whole string, validated; its length in UTF-8 bytes once its escapes are decoded.
    mutating func stringLength() throws -> Int {
        try expect(UInt8(ascii: "\""))
        var length = 0
        while position < bytes.count {
            let byte = bytes[position]
            position += 1
            switch byte {
            case UInt8(ascii: "\""):
                return length
            case UInt8(ascii: "\\"):
                guard let escaped = peek() else { throw GiveUp() }
                position += 1
                switch escaped {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"), UInt8(ascii: "f"),
                    UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
                    length += 1
                case UInt8(ascii: "u"):
                    let unit = try hex4()
                    if unit >= 0xD800 && unit < 0xDC00 {
                        // A surrogate pair is one code point of four bytes; a lone half is left to the tree.
                        guard peek() == UInt8(ascii: "\\") else { throw GiveUp() }
                        position += 1
                        guard peek() == UInt8(ascii: "u") else { throw GiveUp() }
                        position += 1
                        let low = try hex4()
                        guard low >= 0xDC00 && low < 0xE000 else { throw GiveUp() }
                        length += 4
                    } else if unit >= 0xDC00 && unit < 0xE000 {
                        throw GiveUp()
                    } else {
                        length += unit < 0x80 ? 1 : unit < 0x800 ? 2 : 3
                    }
                default:
                    throw GiveUp()
                }
            default:
                guard byte >= 0x20 else { throw GiveUp() }
                length += 1
            }
        }
        throw GiveUp()
    }

    mutating func hex4() throws -> Int {
        guard position + 4 <= bytes.count else { throw GiveUp() }
        var value = 0
        for _ in 0..<4 {
            let byte = bytes[position]
            position += 1
            let digit: Int
            switch byte {
            case 0x30...0x39: digit = Int(byte - 0x30)
            case 0x41...0x46: digit = Int(byte - 0x41 + 10)
            case 0x61...0x66: digit = Int(byte - 0x61 + 10)
            default: throw GiveUp()
            }
            value = value * 16 + digit
        }
        return value
    }

    // MARK: bytes

    func peek() -> UInt8? {
        position < bytes.count ? bytes[position] : nil
    }

    mutating func expect(_ byte: UInt8) throws {
        guard position < bytes.count, bytes[position] == byte else { throw GiveUp() }
        position += 1
    }

    /// Spaces and tabs; a line break cannot be relayed inside one SSE `data:` line, so it gives up.
    mutating func skipSpace() {
        while position < bytes.count, bytes[position] == 0x20 || bytes[position] == 0x09 { position += 1 }
    }
}
