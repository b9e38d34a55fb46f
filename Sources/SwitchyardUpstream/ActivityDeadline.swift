import NIOCore
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
    /// It sleeps on a timer of `eventLoop` (the HTTP client's), not `Task.sleep`: Dispatch's timers
    /// cost a wake-up of its manager thread to arm and again to cancel — a context switch or two per
    /// request, about 5 % of a request's CPU on one core — and a cancelled one stays queued until its
    /// time (which made every request's watchdog live for the idle timeout, a minute). A NIO timer is
    /// armed and removed on the loop, and lives no longer than its request. It wakes at the deadline
    /// as it stood, and sleeps again if the reading side moved it meanwhile.
    func watch(on eventLoop: any EventLoop) async throws -> UpstreamErrorPhase {
        while true {
            let (deadline, phase) = state.withLock { ($0.deadline, $0.phase) }
            let now = ContinuousClock.now
            if deadline <= now { return phase }
            try await Self.sleep(for: deadline - now, on: eventLoop)
        }
    }

    /// Calls `onTimeout` (on the loop) once the deadline passes unextended, unless the returned
    /// alarm is disarmed first: the watchdog as a timer, without a task of its own. It wakes at the
    /// deadline as it stood and re-arms itself if the reading side moved it meanwhile.
    func arm(on eventLoop: any EventLoop, onTimeout: @escaping @Sendable (UpstreamErrorPhase) -> Void) -> Alarm {
        let alarm = Alarm()
        alarm.schedule(self, on: eventLoop, onTimeout)
        return alarm
    }

    /// A watchdog's timer; `disarm` it when the exchange is over.
    final class Alarm: Sendable {
        private struct State {
            var timer: Scheduled<Void>?
            var disarmed = false
        }

        private let state = Mutex(State())

        fileprivate func schedule(
            _ activity: ActivityDeadline, on eventLoop: any EventLoop,
            _ onTimeout: @escaping @Sendable (UpstreamErrorPhase) -> Void
        ) {
            let (deadline, phase) = activity.state.withLock { ($0.deadline, $0.phase) }
            let now = ContinuousClock.now
            guard deadline > now else {
                if state.withLock({ !$0.disarmed }) { onTimeout(phase) }
                return
            }
            let (seconds, attoseconds) = (deadline - now).components
            let timer = eventLoop.scheduleTask(in: .nanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)) {
                self.schedule(activity, on: eventLoop, onTimeout)
            }
            let keep = state.withLock { state -> Bool in
                guard !state.disarmed else { return false }
                state.timer = timer
                return true
            }
            if !keep { timer.cancel() }
        }

        func disarm() {
            let timer = state.withLock { state -> Scheduled<Void>? in
                state.disarmed = true
                defer { state.timer = nil }
                return state.timer
            }
            timer?.cancel()
        }
    }

    /// Sleeps on the loop's timer; a cancelled sleep throws `CancellationError` at once.
    static func sleep(for duration: Duration, on eventLoop: any EventLoop) async throws {
        let (seconds, attoseconds) = duration.components
        let nanoseconds = seconds * 1_000_000_000 + attoseconds / 1_000_000_000
        let timer = eventLoop.scheduleTask(in: .nanoseconds(max(0, nanoseconds))) {}
        do {
            try await withTaskCancellationHandler {
                try await timer.futureResult.get()
            } onCancel: {
                timer.cancel()
            }
        } catch {
            throw CancellationError()
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
