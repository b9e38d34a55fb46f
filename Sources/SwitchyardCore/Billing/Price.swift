/// What a model costs, from config strings parsed exactly. Rates are kept in nano-units (1e-9) so
/// that prices such as "0.0042" per 1K tokens lose nothing; each request's cost is rounded once, half
/// up, to a micro-unit.
public enum Price: Sendable, Equatable {
    /// Nothing is charged.
    case free
    /// Per 1K tokens, input and output separately.
    case tokens(inputPer1K: Int64, outputPer1K: Int64)
    /// Per second of generation (from the request reaching the upstream to its last byte).
    case perSecond(Int64)
    /// A flat amount per request that produced output.
    case perRequest(Int64)

    /// A decimal price string as nano-units; nil when malformed or negative.
    public static func nanos(_ text: String) -> Int64? {
        guard let value = Decimals.parse(text, places: 9), value >= 0 else { return nil }
        return value
    }

    /// The cost of what a request used, with the account's multiplier (in millionths) applied.
    public func cost(promptTokens: Int, completionTokens: Int, generationMillis: Int64, multiplierPPM: Int64) -> Money {
        // Units of the numerator: nano-units × 1/1000 (per 1K tokens, or per 1000 ms) × 1e-6 (ppm).
        let numerator: Int128
        switch self {
        case .free:
            return .zero
        case .tokens(let input, let output):
            numerator = (Int128(promptTokens) * Int128(input) + Int128(completionTokens) * Int128(output))
                * Int128(multiplierPPM)
        case .perSecond(let rate):
            numerator = Int128(max(0, generationMillis)) * Int128(rate) * Int128(multiplierPPM)
        case .perRequest(let amount):
            numerator = Int128(amount) * 1000 * Int128(multiplierPPM)
        }
        // nano → micro (1e3), per-1K or per-1000-ms (1e3), ppm (1e6).
        let divisor: Int128 = 1_000_000_000_000
        let micros = (numerator + divisor / 2) / divisor
        return Money(micros: Int64(clamping: micros))
    }
}
