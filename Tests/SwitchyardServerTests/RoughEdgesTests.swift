import AsyncHTTPClient
import NIOCore
import SwitchyardCore
import SwitchyardStore
import Testing

@testable import SwitchyardServer

/// Issue 16: what a new user ran into, each with the test that failed before.
@Suite(.timeLimit(.minutes(2))) struct RoughEdgesTests {
    static func contextModels(_ config: inout Config) {
        config.models.append(
            .init(name: "ctx", context: 100, deployments: [.init(provider: "fake", model: "upstream-ctx")]))
        var clamped = ModelConfig(name: "ctx-clamp", context: 100, deployments: [.init(provider: "fake", model: "upstream-ctx")])
        clamped.maxTokensOverflow = .clamp
        config.models.append(clamped)
    }

    // MARK: 2. the context window

    @Test func aPromptOverTheContextIsRefusedBeforeAnythingIsHeldOrSent() async throws {
        try await GatewayHarness.run(configure: { config, _ in Self.contextModels(&config) }) { gateway in
            let long = String(repeating: "word ", count: 200)  // 1 000 bytes ≈ 250 tokens > 100
            let body = #"{"model":"ctx","messages":[{"role":"user","content":"\#(long)"}],"stream":true}"#
            let reply = try await gateway.post("/v1/chat/completions", body)
            #expect(reply.status == 400)
            #expect(reply.json["error"]?["code"] == "context_length_exceeded")
            #expect(reply.json["error"]?["param"] == "messages")
            #expect(reply.json["error"]?["type"] == "invalid_request_error")
            #expect(reply.json["error"]?["message"]?.stringValue?.hasPrefix("This model's maximum context length is 100 tokens.") == true)
            #expect(gateway.upstream.requests.isEmpty)
            #expect(try await gateway.ledger().isEmpty)
        }
    }

    @Test func maxTokensBeyondWhatRemainsIsRefusedOrClampedAsTheModelSays() async throws {
        try await GatewayHarness.run(configure: { config, _ in Self.contextModels(&config) }) { gateway in
            let refused = try await gateway.post("/v1/chat/completions", chat("ctx", extra: #""max_tokens":100000"#))
            #expect(refused.status == 400)
            #expect(refused.json["error"]?["code"] == "context_length_exceeded")
            #expect(refused.json["error"]?["param"] == "max_tokens")
            #expect(gateway.upstream.requests.isEmpty)
            // "hello there" is 3 tokens by the estimate, with framing: 100 - 7 = 93 remain.
            let clamped = try await gateway.post("/v1/chat/completions", chat("ctx-clamp", extra: #""max_tokens":100000"#))
            #expect(clamped.status == 200)
            #expect(gateway.lastUpstreamBody["max_tokens"] == 93)
            let fits = try await gateway.post("/v1/chat/completions", chat("ctx", extra: #""max_completion_tokens":50"#))
            #expect(fits.status == 200)
            #expect(gateway.lastUpstreamBody["max_completion_tokens"] == 50)
        }
    }

    @Test func aStreamThatEndsWithNoEventAndNoDoneIsAnUpstreamError() async throws {
        try await GatewayHarness.run { gateway in
            let reply = try await gateway.post("/v1/chat/completions", chat("m", stream: true, extra: #""fake":{"empty_stream":true}"#))
            #expect(reply.status == 502)
            #expect(reply.json["error"]?["code"] == "upstream_error")
            _ = try await gateway.settled()
            let row = try #require(try await gateway.ledger().first)
            #expect(row.status == "failed" && row.cost == .zero)
        }
    }

    @Test func aStreamThatBreaksAfterItsRoleChunkChargesNothing() async throws {
        try await GatewayHarness.run { gateway in
            let reply = try await gateway.post("/v1/chat/completions", chat("m", stream: true, extra: #""fake":{"die_after":0}"#))
            #expect(reply.status == 200)
            #expect(reply.chunks.last?["error"] != nil && !reply.events.contains("[DONE]"))
            _ = try await gateway.settled()
            let row = try #require(try await gateway.ledger().first)
            #expect(row.status == "failed" && row.cost == .zero && row.completionTokens == 0)
        }
    }

    // MARK: 3. the catalog needs a key, and shows the caller's models

    @Test func theCatalogNeedsAKeyAndListsOnlyWhatTheKeyMayUse() async throws {
        try await GatewayHarness.run { gateway in
            let anonymous = try await gateway.get("/v1/models", auth: nil)
            #expect(anonymous.status == 401 && anonymous.json["error"]?["code"] == "invalid_api_key")
            #expect(try await gateway.get("/v1/models/m", auth: nil).status == 401)
            #expect(try await gateway.get("/v1/models").json["data"]?.arrayValue?.count ?? 0 > 2)

            let accounts = Accounts(store: gateway.store)
            let narrow = try await accounts.createKey(accountID: gateway.accountID, label: "demo only", models: ["demo"], expiresAt: nil)
            let listed = try await gateway.get("/v1/models", auth: narrow.secret)
            #expect(listed.json["data"]?.arrayValue?.compactMap { $0["id"]?.stringValue } == ["demo"])
            #expect(try await gateway.get("/v1/models/m", auth: narrow.secret).status == 404)
            #expect(try await gateway.get("/v1/models/demo", auth: narrow.secret).status == 200)
            let seed = try await gateway.get("/llm_api/\(narrow.secret)/u//v1/models", auth: nil)
            #expect(seed.json["data"]?.arrayValue?.count == 1)
        }
    }

    @Test func aPublicCatalogAnswersWithoutAKey() async throws {
        try await GatewayHarness.run(configure: { config, _ in config.publicModels = true }) { gateway in
            let anonymous = try await gateway.get("/v1/models", auth: nil)
            #expect(anonymous.status == 200)
            #expect(anonymous.json["data"]?.arrayValue?.count == gateway.catalogSize)
            #expect(try await gateway.get("/v1/models", auth: "sk-sy-not-a-key").status == 200)
        }
    }

    // MARK: 4. the seed's demo account, called exactly as its document shows

    @Test func aConfiguredPublicDemoKeyServesTheSeedsExamplesVerbatimUnderItsLimits() async throws {
        try await GatewayHarness.run { gateway in
            var config = Config(models: [])
            config.demo = .init(limits: .init(requestsPerMinute: 2))
            let first = try await Bootstrap.prepare(config: config, store: gateway.store, instance: "demo-test")
            #expect(first.announcements.contains { $0.contains("public key 'test'") })
            let call = #"{"messages":[{"role":"user","content":"Hello"}]}"#
            let reply = try await gateway.post("/llm_api/test/test/m/v1/chat/completions", call, auth: nil)
            #expect(reply.status == 200)
            let info = try await gateway.get("/api_user/info?openid=test&type=json", auth: nil)
            #expect(info.status == 200)
            #expect(info.json["id"] == "test")
            #expect(try await gateway.post("/llm_api/test/test/m/v1/chat/completions", call, auth: nil).status == 200)
            // Two a minute, as configured.
            let third = try await gateway.post("/llm_api/test/test/m/v1/chat/completions", call, auth: nil)
            #expect(third.status == 429)

            // Starting again with the same config changes nothing; without `demo:` the key stops working.
            _ = try await Bootstrap.prepare(config: config, store: gateway.store, instance: "demo-test")
            let key = try #require(try await gateway.store.key(hash: Secrets.hash("test")))
            #expect(key.key.revokedAt == nil && key.key.limits?.requestsPerMinute == 2)
            _ = try await Bootstrap.prepare(config: Config(models: []), store: gateway.store, instance: "demo-test")
            #expect(try await gateway.store.key(hash: Secrets.hash("test"))?.key.revokedAt != nil)
        }
    }

    // MARK: 5. usage for answers assembled from a stream

    @Test func anAnswerAssembledFromAStreamWithoutUsageCarriesWhatTheLedgerBills() async throws {
        try await GatewayHarness.run { gateway in
            let estimated = try await gateway.post("/v1/chat/completions", chat("m-always", extra: #""fake":{"no_usage":true,"tokens":6}"#))
            #expect(estimated.status == 200)
            #expect(estimated.header("x-switchyard-usage-source") == "estimated")
            let row = try #require(try await gateway.ledger().first)
            #expect(row.usageSource == "estimated")
            #expect(estimated.json["usage"]?["prompt_tokens"]?.intValue == row.promptTokens)
            #expect(estimated.json["usage"]?["completion_tokens"]?.intValue == row.completionTokens)
            #expect(row.completionTokens == 6)

            let reported = try await gateway.post("/v1/chat/completions", chat("m-always"))
            #expect(reported.header("x-switchyard-usage-source") == "reported")
            #expect(reported.json["usage"]?["completion_tokens"] != nil)
        }
    }

    // MARK: 6. keys can be changed; limits removed; fallbacks limited; request ids on the bill

    @Test func aKeysLabelModelsExpiryAndLimitsCanBeChanged() async throws {
        try await GatewayHarness.run(configure: { config, _ in config.limits.key = .init(requestsPerMinute: 1) }) { gateway in
            let admin = gateway.adminKey
            let created = try await gateway.post("/admin/v1/accounts/\(gateway.accountID)/keys", #"{"label":"ci"}"#, auth: admin)
            let id = try #require(created.json["id"]?.stringValue)
            let secret = try #require(created.json["key"]?.stringValue)
            #expect(try await gateway.post("/v1/chat/completions", chat("m"), auth: secret).status == 200)
            #expect(try await gateway.post("/v1/chat/completions", chat("m"), auth: secret).status == 429)

            // A database limit can remove the config's: "unlimited".
            let patched = try await gateway.post(
                "/admin/v1/keys/\(id)",
                #"{"label":"ci-2","models":["m"],"expires_at":4102444800,"limits":{"requests_per_minute":"unlimited"}}"#,
                auth: admin, method: .PATCH)
            #expect(patched.status == 200)
            #expect(patched.json["label"] == "ci-2" && patched.json["models"] == .array(["m"]))
            #expect(patched.json["expires_at"]?.intValue == 4_102_444_800)
            #expect(patched.json["limits"]?["requests_per_minute"] == "unlimited")
            #expect(try await gateway.post("/v1/chat/completions", chat("m"), auth: secret).status == 200)
            // The allow-list applies at once.
            #expect(try await gateway.post("/v1/chat/completions", chat("demo"), auth: secret).status == 403)
            let account = try await gateway.get("/v1/account", auth: secret)
            #expect(account.json["key"]?["limits"]?["requests_per_minute"] == .null)

            let unknown = try await gateway.post("/admin/v1/keys/\(id)", #"{"hash":"x"}"#, auth: admin, method: .PATCH)
            #expect(unknown.status == 400 && unknown.json["error"]?["param"] == "hash")
            #expect(try await gateway.post("/admin/v1/keys/key_nope", #"{"label":"x"}"#, auth: admin, method: .PATCH).status == 404)
            #expect(try await gateway.post("/admin/v1/keys/\(id)", #"{"label":"x"}"#, auth: secret, method: .PATCH).status == 401)
        }
    }

    @Test func aFallbackModelServesUnderItsOwnLimits() async throws {
        try await GatewayHarness.run(configure: { config, _ in
            config.routing = .init(maxAttempts: 4, backoff: .milliseconds(1), cooldown: .init(failures: 1000))
            config.models += [
                .init(name: "primary", deployments: [.init(provider: "dead", model: "x")], fallbacks: ["narrow"]),
                .init(name: "narrow", deployments: [.init(provider: "fake", model: "upstream-narrow")], limits: .init(requestsPerMinute: 1)),
            ]
        }) { gateway in
            #expect(try await gateway.post("/v1/chat/completions", chat("primary")).status == 200)
            let second = try await gateway.post("/v1/chat/completions", chat("primary"))
            #expect(second.status == 429)
            #expect(second.json["error"]?["message"]?.stringValue?.contains("the model 'narrow'") == true)
            #expect(gateway.upstream.requests.count == 1)
            let rows = try await gateway.ledger()
            #expect(rows.first?.attempts?.contains("fake/upstream-narrow:rate_limited") == true)
            #expect(rows.allSatisfy { $0.status != "running" })
        }
    }

    @Test func theLedgerRecordsTheRequestID() async throws {
        try await GatewayHarness.run { gateway in
            var request = gateway.request(chat("m"))
            request.headers.add(name: "x-request-id", value: "order-42.attempt-1")
            let reply = try await gateway.execute(request)
            #expect(reply.status == 200 && reply.header("x-request-id") == "order-42.attempt-1")
            let row = try #require(try await gateway.ledger().first)
            #expect(row.open.httpRequestID == "order-42.attempt-1")
            let csv = try await gateway.get("/v1/usage?format=csv")
            #expect(csv.text.split(separator: "\n").first?.hasSuffix(",attempts,http_request_id,api,units,unit") == true)
            #expect(csv.text.contains("order-42.attempt-1"))
            let usage = try await gateway.get("/v1/usage")
            #expect(usage.json["data"]?.arrayValue?.first?["http_request_id"] == "order-42.attempt-1")
        }
    }
}

extension GatewayHarness {
    /// How many models the harness's config has.
    var catalogSize: Int { GatewayHarness.config(upstream: upstream, deadPort: 1, database: "").models.count }
}
