import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle
import Synchronization

/// A scriptable OpenAI-compatible upstream (think vLLM) running in-process on a real socket.
///
/// Requests steer it through a `"fake": {...}` object in their body; see `FakeDirectives`.
public final class FakeUpstream: Sendable {
    public let port: Int
    public var baseURL: String { "http://127.0.0.1:\(port)/v1" }

    /// How long `shutdown` lets in-flight responses finish before cutting them off.
    static let shutdownGracePeriod: Duration = .seconds(2)

    private struct Running: Sendable {
        let group: ServiceGroup
        let task: Task<Void, any Error>
    }

    private let state: FakeUpstreamState
    private let running: Mutex<Running?>

    private init(port: Int, state: FakeUpstreamState, running: Running) {
        self.port = port
        self.state = state
        self.running = Mutex(running)
    }

    deinit {
        running.withLock { $0?.task.cancel() }
    }

    /// Starts listening on `host:port` (port 0 picks a free one) and returns once the socket is bound.
    public static func start(
        host: String = "127.0.0.1",
        port: Int = 0,
        defaults: FakeUpstreamDefaults = .init(),
        logLevel: Logger.Level = .error
    ) async throws -> FakeUpstream {
        let state = FakeUpstreamState()
        var logger = Logger(label: "switchyard.fake-upstream")
        logger.logLevel = logLevel
        let (boundPorts, portContinuation) = AsyncStream<Int>.makeStream()
        let app = Application(
            responder: FakeResponder(state: state, defaults: defaults),
            server: .http1(configuration: .init(additionalChannelHandlers: [ConnectionTracker(state: state)])),
            configuration: .init(address: .hostname(host, port: port)),
            onServerRunning: { channel in
                portContinuation.yield(channel.localAddress?.port ?? port)
                portContinuation.finish()
            },
            logger: logger
        )
        // Our own group rather than `app.runService()`, so that `shutdown` can ask for a
        // graceful stop; signals are left to the host process.
        let group = ServiceGroup(configuration: .init(services: [app], gracefulShutdownSignals: [], logger: logger))
        let task = Task {
            // Finishing the stream also unblocks `start` when binding fails.
            defer { portContinuation.finish() }
            try await group.run()
        }
        for await boundPort in boundPorts {
            return FakeUpstream(port: boundPort, state: state, running: Running(group: group, task: task))
        }
        if case .failure(let error) = await task.result { throw error }
        throw FakeUpstreamError.stoppedBeforeListening
    }

    /// Stops the server: idle connections close at once, stalled streams end, and responses
    /// still running after a short grace period are cut off. Safe to call more than once.
    public func shutdown() async {
        guard let running = running.withLock({ $0.take() }) else { return }
        // Graceful first: cancelling straight away makes Hummingbird log errors as it unwinds.
        await running.group.triggerGracefulShutdown()
        let escalation = Task {
            guard (try? await Task.sleep(for: Self.shutdownGracePeriod)) != nil else { return }
            running.task.cancel()
        }
        _ = await running.task.result
        escalation.cancel()
    }

    /// Requests received so far, oldest first (only the most recent 1000 are kept).
    public var requests: [RecordedRequest] { state.requests }

    public func clearRequests() { state.clearRequests() }

    /// Connections currently open; a connection counts as closed once its input ends.
    public var openConnections: Int { state.openConnections }

    /// Instants at which connections closed, in order (only the most recent 10 000 are kept).
    public var closedConnections: [ContinuousClock.Instant] { state.closedConnections }

    /// Waits until at least `count` connections have closed since start; returns the instant
    /// of the `count`-th close, or nil on timeout or cancellation.
    public func waitForClosedConnections(count: Int, timeout: Duration) async -> ContinuousClock.Instant? {
        await state.waitForClosedConnections(count: count, timeout: timeout)
    }

    /// Waits until `count` requests have been received since start (`clearRequests` does not
    /// reset this count); returns whether that happened before the timeout.
    public func waitForRequests(count: Int, timeout: Duration) async -> Bool {
        await state.waitForRequests(count: count, timeout: timeout)
    }
}

public enum FakeUpstreamError: Error, Sendable {
    /// The server stopped without ever listening, and reported no error of its own.
    case stoppedBeforeListening
}
