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

    init(deadline: ContinuousClock.Instant, phase: UpstreamErrorPhase) {
        state = Mutex(State(deadline: deadline, phase: phase))
    }

    func extend(to deadline: ContinuousClock.Instant, phase: UpstreamErrorPhase) {
        state.withLock {
            $0.deadline = deadline
            $0.phase = phase
        }
    }

    /// Returns the phase that timed out once the deadline passes unextended; throws
    /// `CancellationError` when cancelled first.
    func watch() async throws -> UpstreamErrorPhase {
        while true {
            let (deadline, phase) = state.withLock { ($0.deadline, $0.phase) }
            if deadline <= .now { return phase }
            try await Task.sleep(until: deadline, clock: .continuous)
        }
    }
}
