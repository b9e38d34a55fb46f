import Synchronization
import SwitchyardCore

/// The moment by which an upstream must show its next sign of life. The reading side pushes it
/// forward on every piece of data; a watchdog task sleeps until it and fails the exchange if it has
/// not moved. One watchdog per response instead of one timer per chunk.
final class ActivityDeadline: Sendable {
    private struct State {
        var deadline: ContinuousClock.Instant
        var phase: UpstreamErrorPhase
    }

    typealias UpstreamErrorPhase = UpstreamError.Phase

    private let state: Mutex<State>
    /// The exchange's total deadline, which no extension goes past.
    private let total: ContinuousClock.Instant?

    init(deadline: ContinuousClock.Instant, phase: UpstreamErrorPhase, total: ContinuousClock.Instant? = nil) {
        self.total = total
        if let total, total < deadline {
            state = Mutex(State(deadline: total, phase: .total))
        } else {
            state = Mutex(State(deadline: deadline, phase: phase))
        }
    }

    func extend(to deadline: ContinuousClock.Instant, phase: UpstreamErrorPhase) {
        let (deadline, phase) = total.map { deadline < $0 ? (deadline, phase) : ($0, .total) } ?? (deadline, phase)
        state.withLock {
            $0.deadline = deadline
            $0.phase = phase
        }
    }

    /// Returns the phase that timed out once the deadline passes unextended; throws
    /// `CancellationError` when cancelled first.
    ///
    /// It sleeps in slices of at most `slice`: a cancelled `Task.sleep` returns at once, but its
    /// timer stays queued in the executor until the time it was set for. One watchdog per request
    /// sleeping towards a 60 s idle deadline, cancelled a millisecond later when the answer is
    /// complete, kept every request's timer (and what it holds) alive for a minute — about 0.8 KB a
    /// request, 170 MB at 7 000 requests/s. With slices a cancelled timer lives a second at most.
    func watch() async throws -> UpstreamErrorPhase {
        while true {
            let (deadline, phase) = state.withLock { ($0.deadline, $0.phase) }
            let now = ContinuousClock.now
            if deadline <= now { return phase }
            try await Task.sleep(until: min(deadline, now + Self.slice), clock: .continuous)
        }
    }

    static let slice: Duration = .seconds(1)

    /// `Task.sleep(until:)` in slices, for a sleep that is usually cancelled long before its end
    /// (see `watch`).
    static func sleep(until deadline: ContinuousClock.Instant) async throws {
        while true {
            let now = ContinuousClock.now
            if deadline <= now { return }
            try await Task.sleep(until: min(deadline, now + slice), clock: .continuous)
        }
    }
}
