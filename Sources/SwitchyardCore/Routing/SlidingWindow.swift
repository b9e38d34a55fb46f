/// An exact sliding-window counter: admits an amount (one request, or a request's tokens) only if
/// the amounts admitted in the last `window` plus it stay within `limit`. Every admission is kept
/// until it leaves the window, so "60 per minute" never lets a 61st through in any 60 seconds, at
/// the price of memory proportional to what was admitted in the window. Pure: the caller passes the
/// time and keeps the value under its own lock.
public struct SlidingWindow: Sendable {
    /// May change while the window is in use: what was admitted stays counted against the new limit.
    public var limit: Int
    public let window: Duration
    /// Admissions in time (and id) order; `head` is the oldest still in the window.
    private var entries: [(at: ContinuousClock.Instant, amount: Int, id: UInt64)] = []
    private var head = 0
    /// Sum of the amounts of `entries[head...]`.
    public private(set) var total = 0

    public init(limit: Int, window: Duration = .seconds(60)) {
        self.limit = limit
        self.window = window
    }

    public var isEmpty: Bool { head == entries.count }

    /// Forgets what has left the window.
    public mutating func prune(now: ContinuousClock.Instant) {
        while head < entries.count, entries[head].at + window <= now {
            total -= entries[head].amount
            head += 1
        }
        if head == entries.count {
            entries.removeAll(keepingCapacity: entries.count < 4096)
            head = 0
        } else if head > 1024 && head * 2 > entries.count {
            entries.removeFirst(head)
            head = 0
        }
    }

    /// Whether `amount` fits now (after `prune`).
    public func fits(_ amount: Int) -> Bool {
        total + amount <= limit
    }

    public mutating func add(_ amount: Int, id: UInt64, now: ContinuousClock.Instant) {
        entries.append((now, amount, id))
        total += amount
    }

    /// Takes an admission back (the request was refused by something else, or never sent).
    public mutating func remove(id: UInt64) {
        guard let index = position(of: id) else { return }
        total -= entries[index].amount
        entries[index].amount = 0
    }

    /// Replaces an admission's amount, e.g. a token estimate by the tokens actually used.
    public mutating func adjust(id: UInt64, to amount: Int) {
        guard let index = position(of: id) else { return }
        total += amount - entries[index].amount
        entries[index].amount = amount
    }

    /// How long until `amount` would fit, if it ever can (`nil` when it exceeds the limit alone).
    public func wait(for amount: Int, now: ContinuousClock.Instant) -> Duration? {
        guard amount <= limit else { return nil }
        var excess = total + amount - limit
        guard excess > 0 else { return .zero }
        for index in head..<entries.count {
            excess -= entries[index].amount
            if excess <= 0 { return max(.zero, entries[index].at + window - now) }
        }
        return window
    }

    /// What is left of the limit now.
    public var remaining: Int { max(0, limit - total) }

    /// How long until everything admitted so far has left the window (OpenAI's "reset").
    public func resetIn(now: ContinuousClock.Instant) -> Duration {
        guard let newest = entries.last, head < entries.count else { return .zero }
        return max(.zero, newest.at + window - now)
    }

    /// Ids only grow, so the live entries are sorted by id.
    private func position(of id: UInt64) -> Int? {
        var low = head
        var high = entries.count - 1
        while low <= high {
            let middle = (low + high) / 2
            if entries[middle].id == id { return middle }
            if entries[middle].id < id { low = middle + 1 } else { high = middle - 1 }
        }
        return nil
    }
}
