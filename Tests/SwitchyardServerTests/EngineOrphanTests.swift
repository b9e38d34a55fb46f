import AsyncHTTPClient
import Foundation
import NIOCore
import SwitchyardCore
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// No engine outlives the gateway: the real `switchyard` binary with a managed engine, stopped with
/// SIGTERM and killed with SIGKILL.
@Suite(.serialized, .timeLimit(.minutes(1))) struct EngineOrphanTests {
    /// A gateway process serving one managed engine, and the engine's pid once a request started it.
    struct Running {
        let process: Process
        let enginePid: Int32
    }

    static func startGatewayWithWarmEngine(in directory: URL) async throws -> Running {
        let config = """
            server: {host: 127.0.0.1, port: 0, shutdown_grace: 2s}
            database: sqlite:\(directory.appendingPathComponent("gw.sqlite").path)
            admin_key: sk-admin-orphans
            providers:
              e:
                kind: managed
                command: [\(Binaries.fakeUpstream), --port, "${PORT}"]
                health_path: /v1/models
                stop_timeout: 2s
            models:
              tiny: {deployments: [{provider: e}]}
            """
        let path = directory.appendingPathComponent("switchyard.yaml")
        try config.write(to: path, atomically: true, encoding: .utf8)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Binaries.gateway)
        process.arguments = ["serve", "--config", path.path]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        // The first start announces the demo key, then the port it listens on.
        var text = ""
        let deadline = ContinuousClock.now + .seconds(20)
        while !text.contains("listening on"), ContinuousClock.now < deadline {
            let chunk = output.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            text += String(decoding: chunk, as: UTF8.self)
        }
        let key = try #require(text.split(whereSeparator: { $0 == " " || $0 == "\n" }).first { $0.hasPrefix("sk-sy-") }).trimmingCharacters(in: .whitespacesAndNewlines)
        let port = try #require(
            text.components(separatedBy: "listening on http://127.0.0.1:").last?.split(separator: "/").first.flatMap { Int($0) })
        let base = "http://127.0.0.1:\(port)"
        let http = HTTPClient(eventLoopGroupProvider: .singleton)
        do {
            let pid = try await warmUp(base: base, key: key, http: http)
            try await http.shutdown()
            return Running(process: process, enginePid: pid)
        } catch {
            try? await http.shutdown()
            process.terminate()
            throw error
        }
    }

    /// Sends a request (which starts the engine) and returns the engine's pid.
    static func warmUp(base: String, key: String, http: HTTPClient) async throws -> Int32 {
        var request = HTTPClientRequest(url: base + "/v1/chat/completions")
        request.method = .POST
        request.headers.add(name: "authorization", value: "Bearer \(key)")
        request.headers.add(name: "content-type", value: "application/json")
        request.body = .bytes(ByteBuffer(string: chat("tiny")))
        let response = try await http.execute(request, timeout: .seconds(15))
        #expect(response.status == .ok)
        _ = try await response.body.collect(upTo: 1 << 20)
        var engines = HTTPClientRequest(url: base + "/admin/v1/engines")
        engines.headers.add(name: "authorization", value: "Bearer sk-admin-orphans")
        let listing = try await http.execute(engines, timeout: .seconds(5)).body.collect(upTo: 1 << 20)
        let json = try JSONValue.parse(Array(listing.readableBytesView))
        let pid = try #require(json["data"]?.arrayValue?.first?["pid"]?.intValue)
        #expect(FakeEngine.isAlive(Int32(pid)))
        return Int32(pid)
    }

    static func directory() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("switchyard-orphans-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    @Test func sigtermStopsTheGatewayAndItsEngine() async throws {
        let directory = try Self.directory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let running = try await Self.startGatewayWithWarmEngine(in: directory)
        running.process.terminate()
        #expect(await FakeEngine.eventually(.seconds(10)) { !running.process.isRunning })
        #expect(await FakeEngine.eventually(.seconds(1)) { !FakeEngine.isAlive(running.enginePid) })
    }

    @Test func theEngineDiesWithinTwoSecondsOfTheGatewayBeingKilled() async throws {
        let directory = try Self.directory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let running = try await Self.startGatewayWithWarmEngine(in: directory)
        kill(running.process.processIdentifier, SIGKILL)
        #expect(await FakeEngine.eventually(.seconds(2)) { !FakeEngine.isAlive(running.enginePid) })
        running.process.waitUntilExit()
    }
}
