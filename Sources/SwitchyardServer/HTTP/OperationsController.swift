import Hummingbird
import Logging
import NIOCore
import Synchronization
import SwitchyardCore

/// What operators and their machines call: `GET /health` (the process is alive and serving HTTP),
/// `GET /ready` (it should get traffic: database reachable, config loaded, not draining) and
/// `GET /metrics` (Prometheus text, behind `metrics_token` when one is set).
struct OperationsController: Sendable {
    let store: any BillingStore
    let lifecycle: GatewayLifecycle
    let metrics: GatewayMetrics
    /// SHA-256 of `metrics_token`; nil leaves `/metrics` open.
    let metricsDigest: [UInt8]?
    /// How long `/ready` waits for the database before calling it unreachable.
    var databaseTimeout: Duration = .seconds(2)
    /// Whether the other replicas' events reach this one (always, alone): a replica that could miss
    /// a stop or a revocation should get no traffic.
    var bus: any ReplicaBus = LocalReplicaBus()

    func addRoutes(to router: Router<GatewayRequestContext>) {
        router.get("health") { _, _ in
            Relay.json(["status": "ok"])
        }
        router.get("ready") { _, context in
            await ready(logger: context.logger)
        }
        router.get("metrics") { request, _ in
            if let metricsDigest {
                guard Secrets.matches(request.bearerToken, digest: metricsDigest) else {
                    throw GatewayError.invalidAPIKey("GET /metrics needs the metrics token: 'Authorization: Bearer TOKEN'.")
                }
            }
            return Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(bytes: metrics.registry.emitToBuffer())))
        }
    }

    private func ready(logger: Logger) async -> Response {
        let phase = lifecycle.phase
        let database = await databaseReachable(logger: logger)
        let replicas = bus.isConnected
        let isReady = phase == .serving && database && replicas
        let status: String = phase != .serving ? "draining" : (database && replicas ? "ready" : "unavailable")
        return Relay.json(
            [
                "status": .string(status),
                "checks": .object([
                    "config": "loaded",
                    "database": .string(database ? "ok" : "unreachable"),
                    "replicas": .string(replicas ? "ok" : "disconnected"),
                    "draining": .bool(phase != .serving),
                ]),
            ],
            status: isReady ? .ok : .serviceUnavailable)
    }

    /// A real read, answered within `databaseTimeout`. A database that hangs must not hang the probe,
    /// so the read runs in a task of its own that is left to finish (or fail) on its own.
    private func databaseReachable(logger: Logger) async -> Bool {
        let store = self.store
        let timeout = databaseTimeout
        let answered = Once()
        return await withCheckedContinuation { continuation in
            let timer = Task {
                try? await Task.sleep(for: timeout)
                guard answered.claim() else { return }
                logger.warning("not ready: the database did not answer in time", metadata: ["timeout": "\(timeout)"])
                continuation.resume(returning: false)
            }
            Task {
                let reachable: Bool
                do {
                    _ = try await store.setting("readiness_probe")
                    reachable = true
                } catch {
                    logger.warning("not ready: the database failed", metadata: ["error": "\(error)"])
                    reachable = false
                }
                // Claimed before the timer is cancelled: a cancelled timer wakes at once and would claim.
                if answered.claim() { continuation.resume(returning: reachable) }
                timer.cancel()
            }
        }
    }
}

/// True for the first caller only.
private final class Once: Sendable {
    private let claimed = Atomic<Bool>(false)

    func claim() -> Bool {
        !claimed.exchange(true, ordering: .acquiringAndReleasing)
    }
}
