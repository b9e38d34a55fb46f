/// An amount of the operator's currency as an integer count of micro-units (1e-6). No floating point
/// ever touches a balance; decimal strings are parsed and printed exactly.
public struct Money: Sendable, Hashable, Comparable, CustomStringConvertible {
    public var micros: Int64

    public init(micros: Int64) {
        self.micros = micros
    }

    public static let zero = Money(micros: 0)

    /// Parses `"10"`, `"10.50"`, `"-5.000001"`; at most 6 decimal places.
    public init?(_ text: String) {
        guard let value = Decimals.parse(text, places: 6) else { return nil }
        self.micros = value
    }

    /// `"10.00"`, `"0.042"`, `"-0.000001"`: at least two decimals, no trailing zeros beyond them.
    public var description: String { Decimals.format(micros, places: 6, minimumPlaces: 2) }

    public static func < (lhs: Money, rhs: Money) -> Bool { lhs.micros < rhs.micros }
    public static func + (lhs: Money, rhs: Money) -> Money { Money(micros: lhs.micros + rhs.micros) }
    public static func - (lhs: Money, rhs: Money) -> Money { Money(micros: lhs.micros - rhs.micros) }
}

/// Exact fixed-point decimal text ⇄ integer conversions.
public enum Decimals {
    /// `text` as an integer scaled by 10^places; nil when malformed, with more decimals than
    /// `places`, or out of range.
    public static func parse(_ text: String, places: Int) -> Int64? {
        var digits = Substring(text.trimmingSpaces)
        var negative = false
        if digits.first == "-" || digits.first == "+" {
            negative = digits.first == "-"
            digits = digits.dropFirst()
        }
        let parts = digits.split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false)
        let whole = parts[0]
        let fraction = parts.count == 2 ? parts[1] : ""
        guard !whole.isEmpty || !fraction.isEmpty, fraction.count <= places,
            whole.allSatisfy(\.isASCIIDigit), fraction.allSatisfy(\.isASCIIDigit),
            parts.count == 1 || !fraction.isEmpty
        else { return nil }
        var value: Int64 = 0
        for character in whole + fraction + String(repeating: "0", count: places - fraction.count) {
            let (shifted, overflow1) = value.multipliedReportingOverflow(by: 10)
            let (added, overflow2) = shifted.addingReportingOverflow(Int64(character.wholeNumberValue ?? 0))
            guard !overflow1, !overflow2 else { return nil }
            value = added
        }
        return negative ? -value : value
    }

    public static func format(_ value: Int64, places: Int, minimumPlaces: Int) -> String {
        var scale: Int64 = 1
        for _ in 0..<places { scale *= 10 }
        let magnitude = value.magnitude
        let whole = magnitude / UInt64(scale)
        var fraction = String(magnitude % UInt64(scale))
        fraction = String(repeating: "0", count: places - fraction.count) + fraction
        while fraction.count > minimumPlaces, fraction.hasSuffix("0") { fraction.removeLast() }
        let sign = value < 0 ? "-" : ""
        return fraction.isEmpty ? "\(sign)\(whole)" : "\(sign)\(whole).\(fraction)"
    }
}

extension Character {
    var isASCIIDigit: Bool { isASCII && isNumber }
}

extension String {
    var trimmingSpaces: Substring {
        var text = Substring(self)
        while text.first == " " { text = text.dropFirst() }
        while text.last == " " { text = text.dropLast() }
        return text
    }
}
