import AsyncHTTPClient
import Crypto
import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import SwitchyardCore
import SwitchyardFakeUpstream
import SwitchyardStore
import SwitchyardUpstream
import Synchronization
import Testing

@testable import SwitchyardServer

/// The gateway on port 0 in front of a real fake upstream on port 0, and an HTTP client to call it.
struct GatewayHarness {
    let upstream: FakeUpstream
    let gatewayPort: Int
    let http: HTTPClient
    let store: SQLBillingStore
    /// An account of its own (balance 1000.00 unless told) and a key of it, sent with every request by default.
    let accountID: String
    let key: String
    let adminKey = "sk-admin-test"
    let metrics: GatewayMetrics
    let lifecycle: GatewayLifecycle
    /// Every line the gateway logged, as JSON objects (`LineLogHandler`, JSON).
    let logs: LogCapture

    var base: String { "http://127.0.0.1:\(gatewayPort)" }

    /// Providers: `fake` (native streaming, short timeouts), `fake-nostream`, `fake-always`, `dead`
    /// (nothing listens), `demo` (built-in test model). Models: `m` (alias `m-alias`), `m-nostream`,
    /// `m-always`, `m-dead`, `demo`, `emb` (embeddings only).
    static func config(upstream: FakeUpstream, deadPort: Int, database: String) -> Config {
        let timeouts = ProviderConfig.Timeouts(connect: .seconds(1), firstByte: .seconds(1), idle: .milliseconds(500))
        return Config(
            server: .init(host: "127.0.0.1", port: 0, maxBodyBytes: 64 * 1024),
            database: database,
            providers: [
                .init(name: "fake", kind: .openai, baseURL: upstream.baseURL, apiKey: "upstream-secret", timeouts: timeouts),
                .init(name: "fake-nostream", kind: .openai, baseURL: upstream.baseURL, stream: .none, timeouts: timeouts),
                .init(name: "fake-always", kind: .openai, baseURL: upstream.baseURL, stream: .always, timeouts: timeouts),
                .init(name: "dead", kind: .openai, baseURL: "http://127.0.0.1:\(deadPort)/v1", timeouts: timeouts),
                .init(name: "demo", kind: .test, test: .init(tokens: 5, tokenDelay: .milliseconds(1))),
            ],
            models: [
                .init(
                    name: "m", aliases: ["m-alias"], deployments: [.init(provider: "fake", model: "upstream-m")],
                    price: .tokens(inputPer1K: 1_000_000, outputPer1K: 2_000_000)),
                .init(
                    name: "m-second", deployments: [.init(provider: "fake", model: "upstream-m")],
                    price: .perSecond(1_000_000_000), maxSeconds: 10),
                .init(
                    name: "m-request", deployments: [.init(provider: "fake", model: "upstream-m")],
                    price: .perRequest(10_000_000)),
                .init(name: "m-nostream", deployments: [.init(provider: "fake-nostream", model: "upstream-m")]),
                .init(name: "m-always", deployments: [.init(provider: "fake-always", model: "upstream-m")]),
                .init(name: "m-dead", deployments: [.init(provider: "dead", model: "x")]),
                .init(name: "demo", deployments: [.init(provider: "demo", model: "demo")]),
                .init(name: "emb", endpoints: [.embeddings], deployments: [.init(provider: "fake", model: "upstream-emb")]),
            ],
            // One attempt and no cooldown from failures, so that tests about one request's path are not
            // steered by the requests before them; RoutingTests set routing themselves.
            routing: .init(maxAttempts: 1, cooldown: .init(failures: 1_000_000))
        )
    }

    enum Database: String, CaseIterable, Sendable {
        case sqlite, postgres

        /// The backends to run a test on: SQLite always, PostgreSQL when `SWITCHYARD_TEST_POSTGRES_URL` is set.
        static var available: [Database] {
            ProcessInfo.processInfo.environment["SWITCHYARD_TEST_POSTGRES_URL"] == nil ? [.sqlite] : [.sqlite, .postgres]
        }
    }

    /// `configure` adjusts the config above (routing, limits, more providers and models) before the app starts.
    static func run(
        balance: String = "1000.00", database: Database = .sqlite, logLevel: Logger.Level = .info,
        clock: any GatewayClock = SystemClock(), providerFactory: ProviderFactory = .standard,
        configure: @Sendable (inout Config, _ accountID: String) -> Void = { _, _ in },
        _ body: @Sendable (GatewayHarness) async throws -> Void
    ) async throws {
        let upstream = try await FakeUpstream.start()
        let deadPort = try await unusedPort()
        let logs = LogCapture()
        let logger = Logger(label: "switchyard.test") { label in
            LineLogHandler(label: label, format: .json, level: logLevel, output: LogOutput { logs.append($0) })
        }
        let metrics = GatewayMetrics()
        let lifecycle = GatewayLifecycle()
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("switchyard-\(UUID().uuidString).sqlite").path
        let url: String
        switch database {
        case .sqlite: url = "sqlite:\(path)"
        case .postgres: url = try #require(ProcessInfo.processInfo.environment["SWITCHYARD_TEST_POSTGRES_URL"])
        }
        let store = try await SQLBillingStore.open(url: url, logger: logger, eventLoopGroup: MultiThreadedEventLoopGroup.singleton)
        let accountID = "acct-\(UUID().uuidString.prefix(8))"
        let http = HTTPClient(eventLoopGroupProvider: .singleton)
        func cleanUp() async throws {
            try await http.shutdown()
            await upstream.shutdown()
            await store.close()
            for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) }
        }
        do {
            try await store.migrate()
            let accounts = Accounts(store: store)
            _ = try await accounts.createAccount(id: accountID, name: "test account", balance: try #require(Money(balance)))
            let key = try await accounts.createKey(accountID: accountID, label: "test", models: nil, expiresAt: nil).secret
            var config = config(upstream: upstream, deadPort: deadPort, database: url)
            configure(&config, accountID)
            let app = buildApplication(
                config: config,
                dependencies: .init(
                    eventLoopGroup: MultiThreadedEventLoopGroup.singleton, logger: logger, store: store,
                    instance: "test", adminDigest: Array(SHA256.hash(data: Array("sk-admin-test".utf8))),
                    metrics: metrics, lifecycle: lifecycle, clock: clock, providerFactory: providerFactory)
            )
            try await app.test(.live) { client in
                let harness = GatewayHarness(
                    upstream: upstream, gatewayPort: try #require(client.port), http: http, store: store,
                    accountID: accountID, key: key, metrics: metrics, lifecycle: lifecycle, logs: logs)
                try await body(harness)
            }
        } catch {
            try await cleanUp()
            throw error
        }
        try await cleanUp()
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

    /// `auth: nil` sends no key; by default the harness's key.
    func post(_ path: String, _ body: String, auth: String? = "", method: HTTPMethod = .POST) async throws -> Reply {
        var request = HTTPClientRequest(url: base + path)
        request.method = method
        request.headers.add(name: "content-type", value: "application/json")
        if let auth { request.headers.add(name: "authorization", value: "Bearer \(auth.isEmpty ? key : auth)") }
        request.body = .bytes(ByteBuffer(string: body))
        return try await execute(request)
    }

    func get(_ path: String, auth: String? = "") async throws -> Reply {
        var request = HTTPClientRequest(url: base + path)
        if let auth { request.headers.add(name: "authorization", value: "Bearer \(auth.isEmpty ? key : auth)") }
        return try await execute(request)
    }

    /// A streaming chat request carrying the harness's key.
    func request(_ body: String, path: String = "/v1/chat/completions") -> HTTPClientRequest {
        var request = HTTPClientRequest(url: base + path)
        request.method = .POST
        request.headers.add(name: "authorization", value: "Bearer \(key)")
        request.body = .bytes(ByteBuffer(string: body))
        return request
    }

    var account: Account {
        get async throws { try #require(try await store.account(id: accountID)) }
    }

    /// The ledger rows of the harness's account, newest first.
    func ledger() async throws -> [LedgerRow] {
        try await store.ledger(accountID: accountID, from: nil, to: nil, limit: 1000, cursor: nil).rows
    }

    /// Waits until no hold is open (settlement of a stream can finish just after the client saw its end).
    func settled(timeout: Duration = .seconds(5)) async throws -> Account {
        let deadline = ContinuousClock.now + timeout
        while true {
            let account = try await self.account
            if account.held == .zero || ContinuousClock.now > deadline { return account }
            try await Task.sleep(for: .milliseconds(10))
        }
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

/// Log lines captured in memory, each a JSON object.
final class LogCapture: Sendable {
    private let lines = Mutex<[String]>([])

    func append(_ line: [UInt8]) {
        let text = String(decoding: line, as: UTF8.self)
        lines.withLock { $0.append(text) }
    }

    var all: [String] { lines.withLock { $0 } }

    /// The request log lines (`"msg":"request"`), parsed.
    var requests: [JSONValue] {
        all.compactMap { try? JSONValue.parse($0) }.filter { $0["msg"]?.stringValue == "request" }
    }

    /// The request line of one request id, once it was written (a stream's line follows its last byte).
    func request(_ id: String, timeout: Duration = .seconds(5)) async throws -> JSONValue {
        let deadline = ContinuousClock.now + timeout
        while true {
            if let line = requests.first(where: { $0["request_id"]?.stringValue == id }) { return line }
            guard ContinuousClock.now < deadline else { throw CancellationError() }
            try await Task.sleep(for: .milliseconds(5))
        }
    }
}
