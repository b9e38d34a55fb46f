/// A sliding-window counter in O(1) memory: admits an amount (one request, or a request's tokens)
/// only if the amounts admitted in the last `window` plus it stay within `limit`.
///
/// Admissions are summed in buckets of a sixtieth of the window (a second, for a minute), and a
/// bucket is counted until a whole window has passed since its *end* — so an admission counts for at
/// least `window` and at most one bucket longer. That errs on the side of the limit: "60 per minute"
/// never lets a 61st through in any 60 seconds, whatever the timing, and a client may have to wait
/// up to a second longer than an exact log would make it. The price of exactness to the millisecond
/// would be a timestamp per admission (memory growing with traffic); this is at most 61 buckets per
/// counter, small enough to keep in a database row that several replicas share.
///
/// Time is milliseconds in any epoch the caller keeps to (a process's monotonic clock, or the
/// database's). Pure: the caller passes the time and keeps the value under its own lock.
public struct SlidingWindow: Sendable, Equatable {
    /// May change while the window is in use: what was admitted stays counted against the new limit.
    public var limit: Int
    public let windowMillis: Int64
    public let bucketMillis: Int64
    /// Non-empty buckets, oldest first: (bucket index = time / bucketMillis, amount).
    public private(set) var buckets: [(index: Int64, amount: Int)] = []
    /// Sum of the amounts of `buckets`.
    public private(set) var total = 0

    public init(limit: Int, window: Duration = .seconds(60)) {
        self.limit = limit
        self.windowMillis = max(1, window.millis)
        self.bucketMillis = max(1, windowMillis / 60)
    }

    /// A window as stored (`buckets` in order); buckets that are not in order or empty are dropped.
    public init(limit: Int, window: Duration = .seconds(60), buckets: [(index: Int64, amount: Int)]) {
        self.init(limit: limit, window: window)
        for bucket in buckets where bucket.amount > 0 && bucket.index > (self.buckets.last?.index ?? .min) {
            self.buckets.append(bucket)
            total += bucket.amount
        }
    }

    public var window: Duration { .milliseconds(windowMillis) }
    public var isEmpty: Bool { buckets.isEmpty }

    public static func == (lhs: SlidingWindow, rhs: SlidingWindow) -> Bool {
        lhs.limit == rhs.limit && lhs.windowMillis == rhs.windowMillis && lhs.total == rhs.total
            && lhs.buckets.elementsEqual(rhs.buckets) { $0.index == $1.index && $0.amount == $1.amount }
    }

    /// The bucket an admission at `millis` is counted in.
    public func bucket(at millis: Int64) -> Int64 {
        millis >= 0 ? millis / bucketMillis : (millis - bucketMillis + 1) / bucketMillis
    }

    /// When the bucket stops counting.
    private func leaves(_ index: Int64) -> Int64 { (index + 1) * bucketMillis + windowMillis }

    /// Forgets what has left the window.
    public mutating func prune(now: Int64) {
        var drop = 0
        while drop < buckets.count, leaves(buckets[drop].index) <= now {
            total -= buckets[drop].amount
            drop += 1
        }
        if drop > 0 { buckets.removeFirst(drop) }
    }

    /// Whether `amount` fits now (after `prune`).
    public func fits(_ amount: Int) -> Bool {
        total + amount <= limit
    }

    public mutating func add(_ amount: Int, now: Int64) {
        guard amount > 0 else { return }
        let index = bucket(at: now)
        total += amount
        if let last = buckets.last?.index, last >= index {
            // The clock never goes back in one window's keeping; if it did, the newest bucket counts it.
            buckets[buckets.count - 1].amount += amount
        } else {
            buckets.append((index, amount))
        }
    }

    /// Takes back an amount added at `admittedAt` (the request was refused by something else), if its
    /// bucket is still in the window.
    public mutating func remove(_ amount: Int, admittedAt: Int64) {
        adjust(from: amount, to: 0, admittedAt: admittedAt)
    }

    /// Replaces an amount added at `admittedAt`, e.g. a token estimate by the tokens actually used.
    public mutating func adjust(from old: Int, to new: Int, admittedAt: Int64) {
        let index = bucket(at: admittedAt)
        guard let position = buckets.lastIndex(where: { $0.index == index }) else { return }
        let amount = max(0, buckets[position].amount - old + new)
        total += amount - buckets[position].amount
        if amount == 0 { buckets.remove(at: position) } else { buckets[position].amount = amount }
    }

    /// How long until `amount` would fit, if it ever can (`nil` when it exceeds the limit alone).
    public func wait(for amount: Int, now: Int64) -> Duration? {
        guard amount <= limit else { return nil }
        var excess = total + amount - limit
        guard excess > 0 else { return .zero }
        for bucket in buckets {
            excess -= bucket.amount
            if excess <= 0 { return .milliseconds(max(0, leaves(bucket.index) - now)) }
        }
        return window
    }

    /// What is left of the limit now.
    public var remaining: Int { max(0, limit - total) }

    /// How long until everything admitted so far has left the window (OpenAI's "reset").
    public func resetIn(now: Int64) -> Duration {
        guard let newest = buckets.last else { return .zero }
        return .milliseconds(max(0, leaves(newest.index) - now))
    }
}
