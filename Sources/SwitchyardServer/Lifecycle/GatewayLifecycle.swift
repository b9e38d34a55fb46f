import Logging
import SwitchyardCore
import Synchronization

/// Where the gateway is in its life, and how many requests it is handling.
///
/// `serving` until SIGTERM/SIGINT; then `draining`: `/ready` answers 503, new requests are refused
/// with 503 and requests in flight (streams included) run on for the drain time; then `stopping`:
/// `stopping` fires, every request still generating is stopped and settled for what it delivered, and
/// the drain waits for them to finish before the server closes.
public final class GatewayLifecycle: Sendable {
    public enum Phase: String, Sendable {
        case serving, draining, stopping
    }

    private struct State {
        var phase = Phase.serving
        var active = 0
    }

    private let state = Mutex(State())
    /// Fires when the drain time has run out; `InFlight` stops every running generation on it.
    let stopping = Signal()

    public init() {}

    public var phase: Phase { state.withLock { $0.phase } }

    /// Requests being handled (probes are not counted).
    public var active: Int { state.withLock { $0.active } }

    /// Counts a request in; false once draining has begun (the caller refuses it).
    func enter() -> Bool {
        state.withLock { state in
            guard state.phase == .serving else { return false }
            state.active += 1
            return true
        }
    }

    func leave() {
        state.withLock { $0.active -= 1 }
    }

    /// Drains: lets the requests in flight run for `grace`, then stops those still running and waits
    /// up to `settleWithin` for them to end (each settles for what it delivered on its way out).
    public func drain(grace: Duration, settleWithin: Duration, logger: Logger) async {
        let running = state.withLock { state -> Int in
            state.phase = .draining
            return state.active
        }
        logger.info("draining", metadata: ["requests": "\(running)", "drain_time": "\(grace)"])
        guard await waitUntilIdle(for: grace) == false else {
            logger.info("drained: every request finished")
            return
        }
        let stopped = state.withLock { state -> Int in
            state.phase = .stopping
            return state.active
        }
        logger.notice("drain time is over: stopping the requests still running", metadata: ["requests": "\(stopped)"])
        stopping.fire()
        if await waitUntilIdle(for: settleWithin) {
            logger.info("drained: every stopped request was settled")
        } else {
            logger.error(
                "requests still running after being stopped; their ledger rows are released at the next start",
                metadata: ["requests": "\(active)"])
        }
    }

    /// True when no request is left within `timeout`. Polls: this runs once, at shutdown.
    private func waitUntilIdle(for timeout: Duration) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while active > 0 {
            guard ContinuousClock.now < deadline else { return false }
            do {
                try await Task.sleep(for: .milliseconds(5))
            } catch {
                return false
            }
        }
        return true
    }
}

extension GatewayError {
    /// New requests while the gateway drains.
    static let shuttingDown = GatewayError(
        status: 503, message: "The gateway is shutting down and takes no new requests; retry, another instance will answer.",
        type: "api_error", code: "shutting_down")
}
