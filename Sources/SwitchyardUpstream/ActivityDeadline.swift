import Synchronization
import SwitchyardCore

/// The moment by which an upstream must show its next sign of life. The reading side pushes it
/// forward on every piece of data; the upstream's `Watchdogs` fail the exchange once it passes
/// unmoved. One deadline per response instead of one timer per chunk.
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

    /// The phase that timed out, if the deadline has passed. `Watchdogs` checks every armed
    /// deadline with one timer: no task sleeping per exchange (a task, and `Task.sleep`'s Dispatch
    /// timer, whose arming and cancelling wake Dispatch's manager thread, about 5 % of a request's CPU
    /// on one core; a cancelled `Task.sleep` also stays queued until its time, which kept every
    /// request's watchdog alive for the idle timeout, a minute) and no NIO timer per exchange either
    /// (scheduling and cancelling one from another thread wakes the loop, another 5 %).
    func expired(at now: ContinuousClock.Instant) -> UpstreamErrorPhase? {
        state.withLock { $0.deadline <= now ? $0.phase : nil }
    }

    static let slice: Duration = .seconds(1)

    /// `Task.sleep(until:)` in slices, for a sleep that is usually cancelled long before its end (the
    /// rare wait for a connection slot): a cancelled `Task.sleep` stays queued until its time.
    static func sleep(until deadline: ContinuousClock.Instant) async throws {
        while true {
            let now = ContinuousClock.now
            if deadline <= now { return }
            try await Task.sleep(until: min(deadline, now + slice), clock: .continuous)
        }
    }
}
