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
    /// Per image, by `SIZE/QUALITY` (then `SIZE`, then `*`): image generation, edits, variations.
    case perImage([String: Int64])
    /// Per 1M input characters (text to speech).
    case perMillionCharacters(Int64)
    /// Per second of audio: transcribed or translated, or produced by text to speech.
    case perAudioSecond(Int64)
    /// Per asynchronous task (a drawing job), by its action (`IMAGINE`, `UPSCALE`…, then `*`).
    case perAction([String: Int64])

    /// Whether requests at this price are metered in media units (`MediaUsage`) rather than tokens.
    public var isMedia: Bool {
        switch self {
        case .perImage, .perMillionCharacters, .perAudioSecond, .perAction: true
        default: false
        }
    }

    /// The rate of one task of `action`: that action's, else `*`.
    public static func actionRate(_ rates: [String: Int64], action: String) -> Int64 {
        rates[action] ?? rates["*"] ?? rates.values.max() ?? 0
    }

    /// The rate of one image of `key` (`1024x1024/hd`): that key, then its size, then `*`.
    public static func imageRate(_ rates: [String: Int64], key: String) -> Int64 {
        if let rate = rates[key] { return rate }
        if let size = key.split(separator: "/").first, let rate = rates[String(size)] { return rate }
        return rates["*"] ?? rates.values.max() ?? 0
    }

    /// A decimal price string as nano-units; nil when malformed or negative.
    public static func nanos(_ text: String) -> Int64? {
        guard let value = Decimals.parse(text, places: 9), value >= 0 else { return nil }
        return value
    }

    /// The cost of what a request used, with the account's multiplier (in millionths) applied.
    public func cost(
        promptTokens: Int, completionTokens: Int, generationMillis: Int64, multiplierPPM: Int64, media: MediaUsage = .none
    ) -> Money {
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
        case .perImage(let rates):
            numerator = Int128(media.images) * Int128(Self.imageRate(rates, key: media.imageKey)) * 1000
                * Int128(multiplierPPM)
        case .perMillionCharacters(let rate):
            // Per 1M characters: ÷ 1e6, where the common divisor assumes ÷ 1e3.
            let scaled = Int128(media.characters) * Int128(rate) * Int128(multiplierPPM)
            return Self.rounded(scaled, divisor: 1_000_000_000_000_000)
        case .perAudioSecond(let rate):
            numerator = Int128(max(0, media.audioMillis)) * Int128(rate) * Int128(multiplierPPM)
        case .perAction(let rates):
            numerator = Int128(media.tasks) * Int128(Self.actionRate(rates, action: media.action)) * 1000
                * Int128(multiplierPPM)
        }
        // nano → micro (1e3), per-1K or per-1000-ms (1e3), ppm (1e6).
        return Self.rounded(numerator, divisor: 1_000_000_000_000)
    }

    private static func rounded(_ numerator: Int128, divisor: Int128) -> Money {
        Money(micros: Int64(clamping: (numerator + divisor / 2) / divisor))
    }
}

/// What a media request consumed, in the units its price counts.
public struct MediaUsage: Sendable, Equatable {
    /// Images returned.
    public var images: Int
    /// `SIZE/QUALITY` of those images, as the request asked (`1024x1024/standard`).
    public var imageKey: String
    /// Input characters (text to speech).
    public var characters: Int
    /// Audio transcribed, translated or produced, in milliseconds.
    public var audioMillis: Int64
    /// Asynchronous tasks that succeeded, and their action.
    public var tasks: Int
    public var action: String

    public init(
        images: Int = 0, imageKey: String = "", characters: Int = 0, audioMillis: Int64 = 0, tasks: Int = 0,
        action: String = ""
    ) {
        self.images = images
        self.imageKey = imageKey
        self.characters = characters
        self.audioMillis = audioMillis
        self.tasks = tasks
        self.action = action
    }

    public static let none = MediaUsage()

    /// The ledger's `units` and `unit` for this usage at `price`: images, characters or audio milliseconds.
    public func units(for price: Price) -> (count: Int64, unit: String)? {
        switch price {
        case .perImage: (Int64(images), "image")
        case .perMillionCharacters: (Int64(characters), "character")
        case .perAudioSecond: (audioMillis, "audio_ms")
        case .perAction: (Int64(tasks), "task")
        default: nil
        }
    }
}
