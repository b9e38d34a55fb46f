import Foundation
import Synchronization

/// Where the gateway reads the time: a monotonic instant for durations and deadlines, and the wall
/// clock (unix milliseconds) for what is recorded. Billing, auth and routing take it as a port, so
/// tests of time pass a `ManualClock` instead of sleeping.
public protocol GatewayClock: Sendable {
    var now: ContinuousClock.Instant { get }
    /// Unix time in milliseconds.
    var unixMillis: Int64 { get }
}

extension GatewayClock {
    /// Unix time in seconds.
    public var unixSeconds: Int64 { unixMillis / 1000 }
}

/// The machine's clocks.
public struct SystemClock: GatewayClock {
    public init() {}
    public var now: ContinuousClock.Instant { .now }
    public var unixMillis: Int64 { Int64(Date().timeIntervalSince1970 * 1000) }
}

/// A clock that moves only when told to, for tests.
public final class ManualClock: GatewayClock {
    private struct Reading {
        var now: ContinuousClock.Instant
        var unixMillis: Int64
    }

    private let reading: Mutex<Reading>

    public init(unixMillis: Int64 = 1_700_000_000_000) {
        reading = Mutex(Reading(now: .now, unixMillis: unixMillis))
    }

    public var now: ContinuousClock.Instant { reading.withLock { $0.now } }
    public var unixMillis: Int64 { reading.withLock { $0.unixMillis } }

    public func advance(by duration: Duration) {
        reading.withLock { reading in
            reading.now += duration
            reading.unixMillis += duration.millis
        }
    }
}

extension Duration {
    /// Whole milliseconds, never negative.
    public var millis: Int64 {
        let (seconds, attoseconds) = components
        return max(0, seconds * 1000 + attoseconds / 1_000_000_000_000_000)
    }
}
