import Foundation
import SwitchyardCore
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The package's own executables, built beside the test bundle (`.build/debug`), or where
/// `SWITCHYARD_BIN_DIR` says.
enum Binaries {
    static var directory: URL {
        if let dir = ProcessInfo.processInfo.environment["SWITCHYARD_BIN_DIR"], !dir.isEmpty {
            return URL(fileURLWithPath: dir)
        }
        return URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
    }

    static func path(_ name: String) -> String {
        let beside = directory.appendingPathComponent(name).path
        if FileManager.default.isExecutableFile(atPath: beside) { return beside }
        // `swift test` may run the bundle from inside `.build/<triple>/debug/…xctest`.
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        return root.appendingPathComponent(".build/debug/\(name)").path
    }

    static var fakeUpstream: String { path("switchyard-fake-upstream") }
    static var gateway: String { path("switchyard") }
}

/// Managed engines made of the fake upstream binary, for the gateway tests.
enum FakeEngine {
    /// A `managed` provider running the fake upstream (3 tokens an answer; `crash_after` allowed).
    static func provider(
        _ name: String, startupDelayMs: Int = 0, group: String? = nil, idle: Duration? = nil,
        startTimeout: Duration = .seconds(10), maxQueue: Int = 64, delayMs: Int = 0
    ) -> ProviderConfig {
        ProviderConfig(
            name: name, kind: .managed, baseURL: "http://127.0.0.1:${PORT}/v1",
            timeouts: .init(connect: .seconds(1), firstByte: .seconds(5), idle: .seconds(2)), maxQueue: maxQueue,
            managed: ManagedEngine(
                command: [
                    Binaries.fakeUpstream, "--port", "${PORT}", "--startup-delay-ms", String(startupDelayMs), "--tokens", "3",
                    "--delay-ms", String(delayMs), "--allow-crash",
                ],
                healthPath: "/v1/models", startTimeout: startTimeout, idleTimeout: idle, stopTimeout: .seconds(2),
                group: group))
    }

    /// Adds engine providers and a model per provider (`model-<provider>`, free).
    static func add(_ providers: [ProviderConfig], to config: inout Config, maxRunning: Int? = nil) {
        config.providers += providers
        for provider in providers {
            config.models.append(
                .init(name: "model-\(provider.name)", deployments: [.init(provider: provider.name, model: "tiny")]))
        }
        config.engines.maxRunning = maxRunning
    }

    /// Whether a process with this pid is alive (a zombie is not).
    static func isAlive(_ pid: Int32) -> Bool {
        guard kill(pid, 0) == 0 else { return false }
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")")
        else { return true }
        return !stat[stat.index(after: close)...].trimmingCharacters(in: .whitespaces).hasPrefix("Z")
    }

    /// Polls `condition` every 20 ms for at most `timeout`.
    static func eventually(_ timeout: Duration = .seconds(5), _ condition: () async throws -> Bool) async rethrows -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if try await condition() { return true }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return try await condition()
    }
}
