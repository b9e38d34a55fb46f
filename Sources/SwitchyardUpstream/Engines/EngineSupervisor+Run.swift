import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import SwitchyardCore

extension EngineSupervisor {
    /// Wakes for the fleet's next deadline (or an event that may move it); on graceful shutdown
    /// stops every engine and returns once none is left. Cancelled, it kills what is still running.
    public func run() async throws {
        await withGracefulShutdownHandler {
            await withTaskCancellationHandler {
                await loop()
            } onCancel: {
                self.wakeUp()
            }
        } onGracefulShutdown: {
            self.apply { state, now in state.fleet.shutdown(now: now) }
        }
        let left = state.withLock { Array($0.running.values) }
        for running in left { running.process.signalGroup(SIGKILL) }
    }

    private func loop() async {
        while !Task.isCancelled {
            let (deadline, done) = state.withLock { ($0.fleet.nextDeadline, $0.fleet.shuttingDown && $0.fleet.allStopped) }
            if done { return }
            // The deadline is on the gateway's clock; the cap keeps a clock that is not the system's
            // (a test's) from stalling the loop.
            let cap = ContinuousClock.now + .seconds(5)
            await sleep(until: min(deadline.map { ContinuousClock.now + ($0 - clock.now) } ?? cap, cap))
            apply(wake: false) { state, now in state.fleet.tick(now: now) }
        }
    }

    private func sleep(until deadline: ContinuousClock.Instant) async {
        // A timer cancelled because something else woke the loop must not wake it again: that
        // stale wake-up would end the next sleep at once, whose cancelled timer would do the same,
        // and the loop would spin.
        let timer = Task {
            do { try await Task.sleep(until: deadline, clock: .continuous) } catch { return }
            self.wakeUp()
        }
        defer { timer.cancel() }
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let now = state.withLock { state -> Bool in
                if state.woken {
                    state.woken = false
                    return true
                }
                state.wake = continuation
                return false
            }
            if now { continuation.resume() }
        }
    }

    func wakeUp() {
        let wake = state.withLock { state in
            let wake = state.wake
            state.wake = nil
            if wake == nil { state.woken = true }
            return wake
        }
        wake?.resume()
    }

    // MARK: one process

    /// Picks a port, spawns the process, watches its exit and polls its health until it answers 200
    /// (or it is no longer this epoch's start).
    func spawn(_ name: String, epoch: Int) async {
        guard let engine = engines[name] else { return }
        var engineLogger = logger
        engineLogger[metadataKey: "engine"] = .string(name)
        let process: EngineProcess
        let port: Int
        do {
            port = try await freePort()
            state.withLock { $0.ports[name] = port }
            let arguments = EngineProcess.commandLine(engine.arguments(port: port))
            let environment = ProcessInfo.processInfo.environment.merging(engine.environment) { $1 }
            let (spawned, output) = try await spawner.run { try EngineProcess.spawn(arguments, environment: environment) }
            process = spawned
            EngineProcess.forward(output: output, logger: engineLogger)
        } catch {
            engineLogger.error("engine could not be started", metadata: ["error": .string("\(error)")])
            apply { state, now in state.fleet.exited(name, epoch: epoch, now: now) }
            return
        }
        engineLogger.info(
            "engine starting", metadata: ["pid": .stringConvertible(process.pid), "port": .stringConvertible(port)])
        let current = state.withLock { state in
            state.running[name] = Running(process: process, epoch: epoch)
            return state.fleet.engines[name]?.epoch == epoch && state.fleet.engines[name]?.state == .starting
        }
        // Stopped while it was being spawned: the SIGTERM found no process then.
        if !current { process.signalGroup(SIGTERM) }
        Task {
            let how = await process.exit()
            let expected = state.withLock { state in
                if state.running[name]?.epoch == epoch { state.running[name] = nil }
                return state.fleet.engines[name]?.state == .stopping
            }
            let metadata: Logger.Metadata = ["pid": .stringConvertible(process.pid), "how": .string(how)]
            if expected {
                engineLogger.info("engine stopped", metadata: metadata)
            } else {
                engineLogger.warning("engine exited unexpectedly", metadata: metadata)
            }
            apply { state, now in state.fleet.exited(name, epoch: epoch, now: now) }
        }
        if current { await pollHealth(name, epoch: epoch, url: "http://127.0.0.1:\(port)\(engine.healthPath)") }
    }

    private func pollHealth(_ name: String, epoch: Int, url: String) async {
        var pause = Duration.milliseconds(25)
        while !Task.isCancelled {
            let starting = state.withLock { state in
                state.fleet.engines[name]?.epoch == epoch && state.fleet.engines[name]?.state == .starting
            }
            guard starting else { return }
            if await isHealthy(url) {
                apply { state, now in state.fleet.healthy(name, epoch: epoch, now: now) }
                let load = state.withLock { $0.fleet.engines[name]?.lastLoad }
                logger.info(
                    "engine ready",
                    metadata: ["engine": .string(name), "load_ms": .stringConvertible(load?.millis ?? 0)])
                return
            }
            try? await Task.sleep(for: pause)
            // Quick while a small model loads in a second, gentle while a large one takes minutes.
            pause = min(pause * 1.25, .milliseconds(500))
        }
    }

    private func isHealthy(_ url: String) async -> Bool {
        guard let http else { return false }
        do {
            let response = try await http.execute(HTTPClientRequest(url: url), timeout: .seconds(2), logger: logger.heldAtDebug)
            _ = try await response.body.collect(upTo: 16 * 1024 * 1024)
            return response.status.code == 200
        } catch {
            return false
        }
    }

    /// A port nothing listens on now: bound on 127.0.0.1 and released for the engine to take.
    private func freePort() async throws -> Int {
        let channel = try await ServerBootstrap(group: eventLoopGroup).bind(host: "127.0.0.1", port: 0).get()
        let port = channel.localAddress?.port ?? 0
        try await channel.close()
        guard port > 0 else { throw UpstreamError.connectFailed }
        return port
    }
}
