import AsyncHTTPClient
import NIOCore
import NIOPosix
import Synchronization
import SwitchyardCore
import SwitchyardFakeUpstream
import Testing

@testable import SwitchyardUpstream

/// `OpenAIProvider.send` through `UpstreamCall` (AsyncHTTPClient's delegate interface): what the
/// caller gets on each path, and that the exchange's end (`onEnd`: the connection slot, a managed
/// engine's request in flight) is reported exactly once on every one of them.
@Suite(.timeLimit(.minutes(1))) struct UpstreamCallTests {
    @Test func aWholeAnswerReturnsItsBodyAndEndsOnce() async throws {
        try await withProvider { provider, _ in
            let ends = Ends()
            let response = try await provider.send(
                chat(#""fake":{"tokens":3}"#), logger: .init(label: "test"), baseURL: provider.config.baseURL,
                onEnd: ends.count)
            #expect(response.status == 200)
            guard case .complete(let bytes) = response.body else { throw Unexpected.body }
            let object = try #require(JSONValue.parse(bytes).objectValue)
            #expect(object["choices"]?.arrayValue?.first?["message"]?["content"] == "w1 w2 w3")
            #expect(response.headers.contains { $0.name == "content-type" })
            #expect(ends.value == 1)
            #expect(provider.gate.inUse == 0)
        }
    }

    @Test func aStreamYieldsItsPayloadsUntilDoneAndEndsOnceDrained() async throws {
        try await withProvider { provider, _ in
            let ends = Ends()
            let response = try await provider.send(
                chat(#""fake":{"tokens":4}"#, stream: true), logger: .init(label: "test"),
                baseURL: provider.config.baseURL, onEnd: ends.count)
            guard case .events(let events) = response.body else { throw Unexpected.body }
            var payloads: [[UInt8]] = []
            while let payload = try await events.next() { payloads.append(payload) }
            // role, four tokens, finish, usage; `[DONE]` ends the sequence and is not passed on.
            #expect(payloads.count == 7)
            #expect(!payloads.contains { SSEParser.isDone($0) })
            #expect(await eventually { ends.value == 1 })
            #expect(provider.gate.inUse == 0)
        }
    }

    @Test func aStreamTheConsumerCancelsClosesTheConnectionAndEndsOnce() async throws {
        try await withProvider { provider, upstream in
            let ends = Ends()
            let response = try await provider.send(
                chat(#""fake":{"tokens":200,"delay_ms":20}"#, stream: true), logger: .init(label: "test"),
                baseURL: provider.config.baseURL, onEnd: ends.count)
            guard case .events(let events) = response.body else { throw Unexpected.body }
            #expect(try await events.next() != nil)
            events.cancel()
            #expect(await upstream.waitForClosedConnections(count: 1, timeout: .seconds(5)) != nil)
            #expect(await eventually { ends.value == 1 })
            await #expect(throws: CancellationError.self) { try await events.next() }
        }
    }

    @Test func aMidStreamStallEndsTheStreamWithTheIdleTimeout() async throws {
        try await withProvider(timeouts: .init(connect: .seconds(1), firstByte: .seconds(5), idle: .milliseconds(300))) {
            provider, _ in
            let ends = Ends()
            let response = try await provider.send(
                chat(#""fake":{"tokens":10,"stall_after":2}"#, stream: true), logger: .init(label: "test"),
                baseURL: provider.config.baseURL, onEnd: ends.count)
            guard case .events(let events) = response.body else { throw Unexpected.body }
            var received = 0
            await #expect(throws: UpstreamError.timeout(.idle)) {
                while try await events.next() != nil { received += 1 }
            }
            #expect(received >= 2)
            #expect(await eventually { ends.value == 1 })
        }
    }

    @Test func noHeadBeforeTheFirstByteDeadlineIsAFirstByteTimeout() async throws {
        try await withProvider(timeouts: .init(connect: .seconds(1), firstByte: .milliseconds(300), idle: .seconds(2))) {
            provider, _ in
            let ends = Ends()
            let start = ContinuousClock.now
            await #expect(throws: UpstreamError.timeout(.firstByte)) {
                _ = try await provider.send(
                    chat(#""fake":{"first_byte_delay_ms":3000}"#), logger: .init(label: "test"),
                    baseURL: provider.config.baseURL, onEnd: ends.count)
            }
            #expect(ContinuousClock.now - start < .seconds(2))
            #expect(ends.value == 1)
            #expect(provider.gate.inUse == 0)
        }
    }

    @Test func aRefusedConnectionFailsAtOnceAndEndsOnce() async throws {
        try await withProvider { provider, _ in
            let ends = Ends()
            // A port nothing listens on: bound, then closed.
            let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .bind(host: "127.0.0.1", port: 0).get()
            let port = try #require(channel.localAddress?.port)
            try await channel.close()
            await #expect(throws: UpstreamError.connectFailed) {
                _ = try await provider.send(
                    chat(""), logger: .init(label: "test"), baseURL: "http://127.0.0.1:\(port)/v1", onEnd: ends.count)
            }
            #expect(ends.value == 1)
        }
    }

    @Test func aCallerCancelledWhileWaitingForTheHeadCancelsTheRequest() async throws {
        try await withProvider { provider, upstream in
            let ends = Ends()
            let call = Task {
                try await provider.send(
                    chat(#""fake":{"first_byte_delay_ms":3000}"#), logger: .init(label: "test"),
                    baseURL: provider.config.baseURL, onEnd: ends.count)
            }
            #expect(await upstream.waitForRequests(count: 1, timeout: .seconds(5)))
            call.cancel()
            await #expect(throws: CancellationError.self) { _ = try await call.value }
            #expect(await upstream.waitForClosedConnections(count: 1, timeout: .seconds(5)) != nil)
            #expect(await eventually { ends.value == 1 })
        }
    }

    // MARK: helpers

    private enum Unexpected: Error { case body }

    /// How many times `onEnd` ran.
    private final class Ends: Sendable {
        private let calls = Mutex(0)
        var value: Int { calls.withLock { $0 } }
        var count: @Sendable () -> Void { { self.calls.withLock { $0 += 1 } } }
    }

    private func chat(_ fake: String, stream: Bool = false) -> UpstreamRequest {
        let text = #"{"model":"m","messages":[{"role":"user","content":"hi"}]"# + (fake.isEmpty ? "" : "," + fake)
            + (stream ? #","stream":true,"stream_options":{"include_usage":true}"# : "") + "}"
        return UpstreamRequest(endpoint: .chatCompletions, body: (try? JSONValue.parse(Array(text.utf8)).objectValue) ?? [:], stream: stream)
    }

    /// Polls `condition` for up to two seconds.
    private func eventually(_ condition: () -> Bool) async -> Bool {
        for _ in 0..<200 {
            if condition() { return true }
            try? await Task.sleep(for: .milliseconds(10))
        }
        return condition()
    }

    private func withProvider(
        timeouts: ProviderConfig.Timeouts = .init(connect: .seconds(1), firstByte: .seconds(5), idle: .seconds(2)),
        _ body: (OpenAIProvider, FakeUpstream) async throws -> Void
    ) async throws {
        // As `ProviderFactory` configures it: a refused connection is not retried.
        var configuration = HTTPClient.Configuration()
        configuration.connectionPool.retryConnectionEstablishment = false
        try await withFakeUpstream(configuration: configuration) { upstream, client in
            let config = ProviderConfig(name: "fake", kind: .openai, baseURL: upstream.baseURL, timeouts: timeouts)
            try await body(OpenAIProvider(config: config, client: client), upstream)
        }
    }
}
