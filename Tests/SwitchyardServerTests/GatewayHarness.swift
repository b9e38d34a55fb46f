import AsyncHTTPClient
import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import NIOPosix
import SwitchyardCore
import SwitchyardFakeUpstream
import SwitchyardUpstream
import Testing

@testable import SwitchyardServer

/// The gateway on port 0 in front of a real fake upstream on port 0, and an HTTP client to call it.
struct GatewayHarness {
    let upstream: FakeUpstream
    let gatewayPort: Int
    let http: HTTPClient

    var base: String { "http://127.0.0.1:\(gatewayPort)" }

    /// Providers: `fake` (native streaming, short timeouts), `fake-nostream`, `fake-always`, `dead`
    /// (nothing listens), `demo` (built-in test model). Models: `m` (alias `m-alias`), `m-nostream`,
    /// `m-always`, `m-dead`, `demo`, `emb` (embeddings only).
    static func config(upstream: FakeUpstream, deadPort: Int) -> Config {
        let timeouts = ProviderConfig.Timeouts(connect: .seconds(1), firstByte: .seconds(1), idle: .milliseconds(500))
        return Config(
            server: .init(host: "127.0.0.1", port: 0, maxBodyBytes: 64 * 1024),
            providers: [
                .init(name: "fake", kind: .openai, baseURL: upstream.baseURL, apiKey: "upstream-secret", timeouts: timeouts),
                .init(name: "fake-nostream", kind: .openai, baseURL: upstream.baseURL, stream: .none, timeouts: timeouts),
                .init(name: "fake-always", kind: .openai, baseURL: upstream.baseURL, stream: .always, timeouts: timeouts),
                .init(name: "dead", kind: .openai, baseURL: "http://127.0.0.1:\(deadPort)/v1", timeouts: timeouts),
                .init(name: "demo", kind: .test, test: .init(tokens: 5, tokenDelay: .milliseconds(1))),
            ],
            models: [
                .init(name: "m", aliases: ["m-alias"], deployments: [.init(provider: "fake", model: "upstream-m")]),
                .init(name: "m-nostream", deployments: [.init(provider: "fake-nostream", model: "upstream-m")]),
                .init(name: "m-always", deployments: [.init(provider: "fake-always", model: "upstream-m")]),
                .init(name: "m-dead", deployments: [.init(provider: "dead", model: "x")]),
                .init(name: "demo", deployments: [.init(provider: "demo", model: "demo")]),
                .init(name: "emb", endpoints: [.embeddings], deployments: [.init(provider: "fake", model: "upstream-emb")]),
            ]
        )
    }

    static func run(_ body: @Sendable (GatewayHarness) async throws -> Void) async throws {
        let upstream = try await FakeUpstream.start()
        let deadPort = try await unusedPort()
        var logger = Logger(label: "switchyard.test")
        logger.logLevel = .warning
        let app = buildApplication(
            config: config(upstream: upstream, deadPort: deadPort),
            dependencies: .init(eventLoopGroup: MultiThreadedEventLoopGroup.singleton, logger: logger)
        )
        let http = HTTPClient(eventLoopGroupProvider: .singleton)
        do {
            try await app.test(.live) { client in
                let harness = GatewayHarness(upstream: upstream, gatewayPort: try #require(client.port), http: http)
                try await body(harness)
            }
        } catch {
            try await http.shutdown()
            await upstream.shutdown()
            throw error
        }
        try await http.shutdown()
        await upstream.shutdown()
    }

    /// A port that was free a moment ago: connections to it are refused.
    static func unusedPort() async throws -> Int {
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .bind(host: "127.0.0.1", port: 0).get()
        let port = try #require(channel.localAddress?.port)
        try await channel.close()
        return port
    }

    struct Reply {
        var status: Int
        var headers: [(String, String)]
        var body: [UInt8]

        var json: JSONValue { (try? JSONValue.parse(body)) ?? .null }
        var text: String { String(decoding: body, as: UTF8.self) }
        func header(_ name: String) -> String? { headers.first { $0.0.lowercased() == name }?.1 }
        /// SSE payloads in order (`[DONE]` included as text).
        var events: [String] {
            var parser = SSEParser()
            var out: [String] = []
            parser.feed(body) { out.append(String(decoding: $0, as: UTF8.self)) }
            return out
        }
        var chunks: [JSONValue] { events.filter { $0 != "[DONE]" }.compactMap { try? JSONValue.parse($0) } }
    }

    func post(_ path: String, _ body: String, headers: [(String, String)] = []) async throws -> Reply {
        var request = HTTPClientRequest(url: base + path)
        request.method = .POST
        request.headers.add(name: "content-type", value: "application/json")
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        request.body = .bytes(ByteBuffer(string: body))
        return try await execute(request)
    }

    func get(_ path: String) async throws -> Reply {
        try await execute(HTTPClientRequest(url: base + path))
    }

    func execute(_ request: HTTPClientRequest) async throws -> Reply {
        let response = try await http.execute(request, timeout: .seconds(10))
        let body = try await response.body.collect(upTo: 16 * 1024 * 1024)
        return Reply(
            status: Int(response.status.code),
            headers: response.headers.map { ($0.name, $0.value) },
            body: Array(body.readableBytesView)
        )
    }

    /// The JSON body the upstream received last.
    var lastUpstreamBody: JSONValue {
        guard let request = upstream.requests.last else { return .null }
        return (try? JSONValue.parse(Array(request.body))) ?? .null
    }
}

func chat(_ model: String, stream: Bool = false, extra: String = "") -> String {
    let extraFields = extra.isEmpty ? "" : ",\(extra)"
    return #"{"model":"\#(model)","messages":[{"role":"user","content":"hello there"}],"stream":\#(stream)\#(extraFields)}"#
}
