import Logging
import ServiceLifecycle

/// The drain as a `Service`. It is the last service of the gateway's group, so on SIGTERM/SIGINT it
/// is the first to shut down: the HTTP server keeps its listener open (answering `/ready` and new
/// requests with 503) until the drain has ended, and only then closes.
struct DrainService: Service {
    /// After the drain time, how long stopped requests get to settle before the gateway gives up on
    /// them (their rows are then released as `interrupted` at the next start).
    static let settleAllowance: Duration = .seconds(10)

    let lifecycle: GatewayLifecycle
    let grace: Duration
    let logger: Logger

    init(lifecycle: GatewayLifecycle, grace: Duration, logger: Logger) {
        self.lifecycle = lifecycle
        self.grace = grace
        self.logger = logger
    }

    func run() async throws {
        do {
            try await gracefulShutdown()
        } catch {
            return  // cancelled, not asked to shut down gracefully: nothing to drain
        }
        await lifecycle.drain(grace: grace, settleWithin: Self.settleAllowance, logger: logger)
    }
}
