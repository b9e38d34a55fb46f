import ArgumentParser
import Dispatch
import Foundation
import SwitchyardFakeUpstream

struct FakeUpstreamCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "switchyard-fake-upstream",
        abstract: "Serve a scriptable fake OpenAI-compatible upstream for tests and benchmarks."
    )

    @Option(help: "Address to listen on.")
    var host = "127.0.0.1"

    @Option(help: "Port to listen on (0 picks a free port).")
    var port = 9001

    @Option(help: "Completion tokens per response unless a request says otherwise.")
    var tokens = 8

    @Option(help: "Milliseconds between streamed chunks unless a request says otherwise.")
    var delayMs = 0

    @Option(help: "Wait this many milliseconds before listening (an engine loading its model).")
    var startupDelayMs = 0

    @Flag(help: "Let a request's \"fake\": {\"crash_after\": N} exit the process (a crashing engine).")
    var allowCrash = false

    func run() async throws {
        let (stop, signalSources) = Self.terminationSignals()
        defer { signalSources.forEach { $0.cancel() } }
        if startupDelayMs > 0 { try await Task.sleep(for: .milliseconds(startupDelayMs)) }
        let crash: (@Sendable () -> Void)? = allowCrash ? { @Sendable () -> Void in Foundation.exit(70) } : nil
        let upstream = try await FakeUpstream.start(
            host: host,
            port: port,
            defaults: FakeUpstreamDefaults(tokens: tokens, delayMs: delayMs, crash: crash)
        )
        // Written straight to the file descriptor so scripts waiting on this line see it at once.
        FileHandle.standardOutput.write(Data("fake upstream listening on http://\(host):\(upstream.port)/v1\n".utf8))
        for await _ in stop { break }
        await upstream.shutdown()
    }

    /// Yields once SIGINT or SIGTERM arrives; the default handlers are disabled so the
    /// server can close its sockets before exiting.
    private static func terminationSignals() -> (AsyncStream<Int32>, [any DispatchSourceSignal]) {
        let (stream, continuation) = AsyncStream<Int32>.makeStream()
        let sources = [SIGINT, SIGTERM].map { number in
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { continuation.yield(number) }
            source.resume()
            return source
        }
        return (stream, sources)
    }
}

// A file named `main.swift` cannot use `@main`, and from top-level code `main()` resolves
// to ParsableCommand's synchronous overload, so parse and run explicitly.
let command = FakeUpstreamCommand.parseOrExit()
do {
    try await command.run()
} catch {
    FakeUpstreamCommand.exit(withError: error)
}
