import NIOCore
import Synchronization
import SwitchyardCore

/// The watchdogs of one upstream's exchanges (`ActivityDeadline`), checked together by one timer:
/// every `tick` while any is armed, the expired ones are told (`onTimeout`) and forgotten. Arming and
/// disarming a watchdog is an insertion and a removal under a lock — no timer of its own to schedule
/// and cancel on the event loop, each of which cost a wake-up of that loop from another thread
/// (issue 15: `scheduleTask` and `cancel` were about 5 % of a request's CPU). A timeout fires at most
/// one tick late; the timeouts it watches are hundreds of milliseconds and more.
final class Watchdogs: Sendable {
    private struct Entry {
        let activity: ActivityDeadline
        let onTimeout: @Sendable (UpstreamError.Phase) -> Void
    }

    private struct State {
        var entries: [UInt64: Entry] = [:]
        var next: UInt64 = 0
        /// Whether the tick is scheduled: from the first watchdog armed until none is left.
        var ticking = false
    }

    private let state = Mutex(State())
    private let eventLoop: any EventLoop
    private let tick: TimeAmount

    init(eventLoop: any EventLoop, tick: TimeAmount = .milliseconds(20)) {
        self.eventLoop = eventLoop
        self.tick = tick
    }

    /// Watches `activity` until the returned alarm is disarmed; `onTimeout` runs (on the loop) once
    /// its deadline has passed unextended.
    func arm(_ activity: ActivityDeadline, onTimeout: @escaping @Sendable (UpstreamError.Phase) -> Void) -> Alarm {
        let (id, start) = state.withLock { state -> (UInt64, Bool) in
            state.next += 1
            state.entries[state.next] = Entry(activity: activity, onTimeout: onTimeout)
            defer { state.ticking = true }
            return (state.next, !state.ticking)
        }
        if start { eventLoop.scheduleTask(in: tick) { self.sweep() } }
        return Alarm(watchdogs: self, id: id)
    }

    fileprivate func disarm(_ id: UInt64) {
        _ = state.withLock { $0.entries.removeValue(forKey: id) }
    }

    private func sweep() {
        let now = ContinuousClock.now
        let (expired, more) = state.withLock { state -> ([(Entry, UpstreamError.Phase)], Bool) in
            var expired: [(Entry, UpstreamError.Phase)] = []
            for (id, entry) in state.entries {
                guard let phase = entry.activity.expired(at: now) else { continue }
                expired.append((entry, phase))
                state.entries[id] = nil
            }
            if state.entries.isEmpty { state.ticking = false }
            return (expired, !state.entries.isEmpty)
        }
        for (entry, phase) in expired { entry.onTimeout(phase) }
        if more { eventLoop.scheduleTask(in: tick) { self.sweep() } }
    }

    /// One armed watchdog; `disarm` it when the exchange is over (more than once is harmless).
    struct Alarm: Sendable {
        fileprivate let watchdogs: Watchdogs
        fileprivate let id: UInt64

        func disarm() { watchdogs.disarm(id) }
    }
}
