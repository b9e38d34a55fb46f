import AsyncHTTPClient
import NIOCore
import SwitchyardCore
import Testing

/// Admission limits: per model, account, key and end user; exact under concurrency; a refusal is a
/// 429 in OpenAI's shape with `retry-after` and changes nothing; every answer carries the
/// `x-ratelimit-*` headers.
@Suite(.timeLimit(.minutes(2))) struct LimitsTests {
    static func limitedModel(_ config: inout Config, requestsPerMinute: Int? = nil, concurrent: Int? = nil) {
        config.models.append(
            .init(
                name: "limited", deployments: [.init(provider: "fake", model: "upstream-limited")],
                limits: .init(requestsPerMinute: requestsPerMinute, concurrent: concurrent),
                price: .perRequest(1000)))  // 1 micro-unit per request
    }

    func expectRateLimited(_ reply: GatewayHarness.Reply, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(reply.status == 429, sourceLocation: sourceLocation)
        #expect(reply.json["error"]?["type"] == "rate_limit_exceeded", sourceLocation: sourceLocation)
        #expect(reply.json["error"]?["code"] == "rate_limit_exceeded", sourceLocation: sourceLocation)
        #expect(Int(reply.header("retry-after") ?? "") ?? 0 >= 1, sourceLocation: sourceLocation)
    }

    @Test func sixtyPerMinuteAdmitsExactlySixtyOf200ConcurrentCallers() async throws {
        try await GatewayHarness.run(configure: { config, _ in Self.limitedModel(&config, requestsPerMinute: 60) }) { gateway in
            let start = ContinuousClock.now
            let replies = try await withThrowingTaskGroup(of: GatewayHarness.Reply.self) { group in
                for index in 0..<200 {
                    group.addTask {
                        try await gateway.post("/v1/chat/completions", chat("limited", stream: index % 2 == 0))
                    }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            let elapsed = ContinuousClock.now - start
            #expect(elapsed < .seconds(50), "all 200 must arrive within the minute")
            let admitted = replies.filter { $0.status == 200 }
            let refused = replies.filter { $0.status == 429 }
            #expect(admitted.count == 60)
            #expect(refused.count == 140)
            for reply in refused.prefix(5) { expectRateLimited(reply) }
            #expect(refused.allSatisfy { $0.header("x-ratelimit-limit-requests") == "60" })
            #expect(refused.allSatisfy { $0.header("x-ratelimit-remaining-requests") == "0" })
            #expect(admitted.allSatisfy { $0.header("x-ratelimit-limit-requests") == "60" })
            // Each admitted request saw a distinct number of requests left: 59 down to 0.
            let remaining = Set(admitted.compactMap { $0.header("x-ratelimit-remaining-requests").flatMap(Int.init) })
            #expect(remaining == Set(0..<60))
            // Refused requests opened no hold and no ledger row, and reached no upstream.
            let rows = try await gateway.ledger()
            #expect(rows.count == 60)
            #expect(gateway.upstream.requests.count == 60)
            let account = try await gateway.settled()
            #expect(account.held == .zero)
            #expect(account.balance == Money(micros: 1_000_000_000 - 60))  // 0.000001 per request
            print("rate limit: 60/min under 200 concurrent callers admitted \(admitted.count), refused \(refused.count) in \(elapsed)")
        }
    }

    @Test func everyAnswerCarriesTheRateLimitHeaders() async throws {
        try await GatewayHarness.run(configure: { config, _ in
            config.limits.account = .init(requestsPerMinute: 100, tokensPerMinute: 100_000)
            config.limits.key = .init(requestsPerMinute: 10)
        }) { gateway in
            let first = try await gateway.post("/v1/chat/completions", chat("m", extra: #""max_tokens":50"#))
            #expect(first.status == 200)
            // The key's 10/min is tighter than the account's 100/min.
            #expect(first.header("x-ratelimit-limit-requests") == "10")
            #expect(first.header("x-ratelimit-remaining-requests") == "9")
            let reset = try #require(first.header("x-ratelimit-reset-requests"))
            #expect(reset.hasSuffix("s"))
            #expect(first.header("x-ratelimit-limit-tokens") == "100000")
            #expect(Int(first.header("x-ratelimit-remaining-tokens") ?? "") ?? 0 < 100_000)
            let stream = try await gateway.post("/v1/chat/completions", chat("m", stream: true))
            #expect(stream.header("x-ratelimit-remaining-requests") == "8")
            let failed = try await gateway.post("/v1/chat/completions", chat("m", extra: #""fake":{"status":500}"#))
            #expect(failed.status == 502)
            #expect(failed.header("x-ratelimit-remaining-requests") == "7")
        }
    }

    @Test func tokensPerMinuteAdmitsOnTheEstimateAndCorrectsAtSettlement() async throws {
        try await GatewayHarness.run(configure: { config, _ in config.limits.account = .init(tokensPerMinute: 100) }) { gateway in
            // Estimate: about 7 prompt tokens + max_tokens 40; actual: the upstream's usage (8 completion tokens).
            let first = try await gateway.post("/v1/chat/completions", chat("m", extra: #""max_tokens":40"#))
            #expect(first.status == 200)
            let afterFirst = try #require(Int(first.header("x-ratelimit-remaining-tokens") ?? ""))
            #expect(afterFirst <= 100 - 40)
            let usedFirst = try #require(first.json["usage"]?["total_tokens"]?.intValue)
            _ = try await gateway.settled()
            let second = try await gateway.post("/v1/chat/completions", chat("m", extra: #""max_tokens":40"#))
            #expect(second.status == 200)
            // The first request now counts what it used, not its estimate.
            let afterSecond = try #require(Int(second.header("x-ratelimit-remaining-tokens") ?? ""))
            #expect(usedFirst < 100 - afterFirst)
            #expect(afterSecond == afterFirst - usedFirst)
            // A request whose estimate alone exceeds the limit is refused, and says why.
            let huge = try await gateway.post("/v1/chat/completions", chat("m", extra: #""max_tokens":500"#))
            expectRateLimited(huge)
            #expect(huge.json["error"]?["message"]?.stringValue?.contains("max_tokens") == true)
            #expect(huge.header("x-ratelimit-limit-tokens") == "100")
            // Concurrent requests that have not settled count their estimates: not all of three fit.
            let slow = chat("m", extra: #""max_tokens":40,"fake":{"first_byte_delay_ms":300}"#)
            async let a = gateway.post("/v1/chat/completions", slow)
            async let b = gateway.post("/v1/chat/completions", slow)
            async let c = gateway.post("/v1/chat/completions", slow)
            let statuses = try await [a.status, b.status, c.status]
            #expect(statuses.contains(200) && statuses.contains(429))
        }
    }

    @Test func concurrentLimitsRefuseTheRequestBeyondThemAndFreeOnSettlement() async throws {
        try await GatewayHarness.run(configure: { config, _ in Self.limitedModel(&config, concurrent: 2) }) { gateway in
            let slow = chat("limited", stream: true, extra: #""fake":{"tokens":10,"delay_ms":100}"#)
            async let one = gateway.post("/v1/chat/completions", slow)
            async let two = gateway.post("/v1/chat/completions", slow)
            #expect(await gateway.upstream.waitForRequests(count: 2, timeout: .seconds(5)))
            let third = try await gateway.post("/v1/chat/completions", chat("limited"))
            expectRateLimited(third)
            #expect(third.json["error"]?["message"]?.stringValue?.contains("concurrent") == true)
            #expect(try await one.status == 200)
            #expect(try await two.status == 200)
            _ = try await gateway.settled()
            #expect(try await gateway.post("/v1/chat/completions", chat("limited")).status == 200)
        }
    }

    @Test func endUsersHaveTheirOwnRequestsPerMinute() async throws {
        try await GatewayHarness.run(configure: { config, _ in config.limits.endUserRequestsPerMinute = 2 }) { gateway in
            for _ in 0..<2 {
                #expect(try await gateway.post("/v1/chat/completions", chat("m", extra: #""user":"alice""#)).status == 200)
            }
            expectRateLimited(try await gateway.post("/v1/chat/completions", chat("m", extra: #""user":"alice""#)))
            #expect(try await gateway.post("/v1/chat/completions", chat("m", extra: #""user":"bob""#)).status == 200)
            // The seed's path style names the end user too.
            let path = "/llm_api/\(gateway.key)/alice/m/v1/chat/completions"
            expectRateLimited(try await gateway.post(path, chat("m")))
            #expect(try await gateway.ledger().count == 3)
        }
    }

    @Test func perAccountOverridesReplaceTheDefault() async throws {
        try await GatewayHarness.run(configure: { config, _ in
            config.limits.account = .init(requestsPerMinute: 1)
        }) { gateway in
            #expect(try await gateway.post("/v1/chat/completions", chat("m")).status == 200)
            expectRateLimited(try await gateway.post("/v1/chat/completions", chat("m")))
        }
        try await GatewayHarness.run(configure: { config, accountID in
            config.limits.account = .init(requestsPerMinute: 1, concurrent: 10)
            config.limits.accounts = [accountID: .init(requestsPerMinute: 3), "someone-else": .init(requestsPerMinute: 100)]
        }) { gateway in
            for _ in 0..<3 { #expect(try await gateway.post("/v1/chat/completions", chat("m")).status == 200) }
            let refused = try await gateway.post("/v1/chat/completions", chat("m"))
            expectRateLimited(refused)
            #expect(refused.header("x-ratelimit-limit-requests") == "3")
        }
    }

    @Test func aRequestRefusedForItsBalanceDoesNotUseTheLimit() async throws {
        // Prices of `m`: 1 micro-unit per prompt token, 2 per completion token; the balance is 100.
        try await GatewayHarness.run(balance: "0.0001", configure: { config, _ in
            config.limits.account = .init(requestsPerMinute: 2)
        }) { gateway in
            let broke = try await gateway.post("/v1/chat/completions", chat("m", extra: #""max_tokens":1000"#))
            #expect(broke.status == 402)
            #expect(broke.header("x-ratelimit-remaining-requests") == "1")
            for _ in 0..<2 {
                #expect(try await gateway.post("/v1/chat/completions", chat("m", extra: #""max_tokens":10"#)).status == 200)
            }
            expectRateLimited(try await gateway.post("/v1/chat/completions", chat("m", extra: #""max_tokens":10"#)))
        }
    }

    @Test func limitsSetThroughTheAdminAPIAreEnforcedAndChangeWithoutARestart() async throws {
        try await GatewayHarness.run { gateway in
            let admin = gateway.adminKey
            let account = "/admin/v1/accounts/\(gateway.accountID)"
            // No limit anywhere: no headers.
            let free = try await gateway.post("/v1/chat/completions", chat("m"))
            #expect(free.status == 200)
            #expect(free.header("x-ratelimit-limit-requests") == nil)

            // The PATCH drops this gateway's cached lookup of the account at once.
            let set = try await gateway.post(account, #"{"limits":{"requests_per_minute":2}}"#, auth: admin, method: .PATCH)
            #expect(set.status == 200)
            for remaining in ["1", "0"] {
                let reply = try await gateway.post("/v1/chat/completions", chat("m"))
                #expect(reply.status == 200)
                #expect(reply.header("x-ratelimit-limit-requests") == "2")
                #expect(reply.header("x-ratelimit-remaining-requests") == remaining)
            }
            let refused = try await gateway.post("/v1/chat/completions", chat("m"))
            expectRateLimited(refused)
            #expect(refused.header("x-ratelimit-limit-requests") == "2")
            #expect(refused.header("x-ratelimit-remaining-requests") == "0")
            #expect(refused.json["error"]?["message"]?.stringValue?.contains("this account: 2 requests per minute") == true)

            // Raised: what was counted in the last minute still counts, against the new limit.
            _ = try await gateway.post(account, #"{"limits":{"requests_per_minute":3}}"#, auth: admin, method: .PATCH)
            let raised = try await gateway.post("/v1/chat/completions", chat("m"))
            #expect(raised.status == 200)
            #expect(raised.header("x-ratelimit-limit-requests") == "3")
            #expect(raised.header("x-ratelimit-remaining-requests") == "0")
            expectRateLimited(try await gateway.post("/v1/chat/completions", chat("m")))

            // Cleared: no limit again.
            _ = try await gateway.post(account, #"{"limits":null}"#, auth: admin, method: .PATCH)
            let cleared = try await gateway.post("/v1/chat/completions", chat("m"))
            #expect(cleared.status == 200)
            #expect(cleared.header("x-ratelimit-limit-requests") == nil)

            // A key's own limit, given when it is created.
            let created = try await gateway.post(
                "\(account)/keys", #"{"label":"one a minute","limits":{"requests_per_minute":1}}"#, auth: admin)
            let key = try #require(created.json["key"]?.stringValue)
            #expect(try await gateway.post("/v1/chat/completions", chat("m"), auth: key).header("x-ratelimit-limit-requests") == "1")
            let keyRefused = try await gateway.post("/v1/chat/completions", chat("m"), auth: key)
            expectRateLimited(keyRefused)
            #expect(keyRefused.json["error"]?["message"]?.stringValue?.contains("this key") == true)
            #expect(try await gateway.post("/v1/chat/completions", chat("m")).status == 200)  // the other key is not limited
        }
    }

    @Test func aDatabaseLimitWinsOverTheConfigFieldByField() async throws {
        try await GatewayHarness.run(configure: { config, accountID in
            config.limits.account = .init(requestsPerMinute: 1, concurrent: 10)
            config.limits.accounts = [accountID: .init(requestsPerMinute: 2, tokensPerMinute: 100_000)]
            config.limits.key = .init(requestsPerMinute: 50)
        }) { gateway in
            let admin = gateway.adminKey
            let account = "/admin/v1/accounts/\(gateway.accountID)"
            _ = try await gateway.post(account, #"{"limits":{"requests_per_minute":3}}"#, auth: admin, method: .PATCH)
            let created = try await gateway.post("\(account)/keys", #"{"limits":{"tokens_per_minute":90000}}"#, auth: admin)
            let key = try #require(created.json["key"]?.stringValue)

            // Account: requests from the database, tokens from the config's override, concurrency from the default.
            // Key: tokens from the database, requests from the default.
            let info = try await gateway.get("/v1/account", auth: key)
            func fields(_ value: JSONValue?) -> [Int?] {
                ["requests_per_minute", "tokens_per_minute", "concurrent"].map { value?[$0]?.intValue }
            }
            #expect(fields(info.json["limits"]) == [3, 100_000, 10])
            #expect(fields(info.json["key"]?["limits"]) == [50, 90_000, nil])
            let seed = try await gateway.get("/api_user/info?openid=\(key)&type=json", auth: nil)
            #expect(fields(seed.json["limits"]) == [3, 100_000, 10])
            #expect(fields(seed.json["key"]?["limits"]) == [50, 90_000, nil])
            // The admin API shows what was set, not what applies.
            #expect(fields(try await gateway.get(account, auth: admin).json["limits"]) == [3, nil, nil])

            for _ in 0..<3 {
                let reply = try await gateway.post("/v1/chat/completions", chat("m", extra: #""max_tokens":20"#), auth: key)
                #expect(reply.status == 200)
                #expect(reply.header("x-ratelimit-limit-requests") == "3")
                #expect(reply.header("x-ratelimit-limit-tokens") == "90000")  // the key's, tighter than the account's
            }
            let refused = try await gateway.post("/v1/chat/completions", chat("m"), auth: key)
            expectRateLimited(refused)
            #expect(refused.header("x-ratelimit-limit-requests") == "3")
        }
    }
}
