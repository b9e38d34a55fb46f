import AsyncHTTPClient
import NIOCore
import SwitchyardCore
import Testing

/// Every way a request can end settles its hold exactly once and charges exactly what the ledger says.
/// Prices in the harness: `m` costs 1 micro-unit per prompt token and 2 per completion token;
/// `m-second` 1.0 per second of generation; `m-request` 0.01 per request.
@Suite(.timeLimit(.minutes(2))) struct BillingTests {
    static let start = Money(micros: 1_000_000_000)  // the harness default, 1000.00

    /// Balance decrease equals the sum of ledger costs, and no hold is left.
    func expectBooksBalance(_ gateway: GatewayHarness, sourceLocation: SourceLocation = #_sourceLocation) async throws {
        let account = try await gateway.settled()
        let rows = try await gateway.ledger()
        let charged = rows.reduce(Money.zero) { $0 + $1.cost }
        #expect(account.held == .zero, sourceLocation: sourceLocation)
        #expect(Self.start - account.balance == charged, sourceLocation: sourceLocation)
        #expect(rows.allSatisfy { $0.status != "running" }, sourceLocation: sourceLocation)
    }

    @Test(arguments: GatewayHarness.Database.available)
    func aCompletedRequestIsChargedItsReportedUsage(_ database: GatewayHarness.Database) async throws {
        try await GatewayHarness.run(database: database) { gateway in
            let reply = try await gateway.post("/v1/chat/completions", chat("m", extra: #""user":"alice","fake":{"tokens":5}"#))
            #expect(reply.status == 200)
            let row = try #require(try await gateway.ledger().first)
            let prompt = try #require(reply.json["usage"]?["prompt_tokens"]?.intValue)
            #expect(row.status == "completed")
            #expect(row.endReason == "stop")
            #expect(row.usageSource == "reported")
            #expect(row.promptTokens == prompt && row.completionTokens == 5)
            #expect(row.cost == Money(micros: Int64(prompt + 2 * 5)))
            #expect(row.open.endUser == "alice")
            #expect(row.open.deployment == "fake/upstream-m")
            #expect(row.open.requestID == reply.json["id"]?.stringValue)
            #expect(row.open.hold >= row.cost)
            try await expectBooksBalance(gateway)
        }
    }

    @Test func anUpstreamFailureBeforeOutputCostsNothing() async throws {
        try await GatewayHarness.run { gateway in
            _ = try await gateway.post("/v1/chat/completions", chat("m", extra: #""fake":{"status":500}"#))
            _ = try await gateway.post("/v1/chat/completions", chat("m", stream: true, extra: #""fake":{"status":429}"#))
            _ = try await gateway.post("/v1/chat/completions", chat("m-dead"))
            _ = try await gateway.post("/v1/chat/completions", chat("m", extra: #""fake":{"first_byte_delay_ms":3000}"#))
            let rows = try await gateway.ledger()
            #expect(rows.count == 4)
            #expect(rows.allSatisfy { $0.status == "failed" && $0.cost == .zero })
            #expect(Set(rows.compactMap(\.httpStatus)) == [502, 429, 504])
            try await expectBooksBalance(gateway)
        }
    }

    @Test func aStreamWithoutReportedUsageIsEstimatedFromWhatWasRelayed() async throws {
        try await GatewayHarness.run { gateway in
            let reply = try await gateway.post(
                "/v1/chat/completions", chat("m", stream: true, extra: #""fake":{"tokens":6,"no_usage":true}"#))
            #expect(reply.events.last == "[DONE]")
            let row = try #require(try await gateway.ledger().first)
            #expect(row.usageSource == "estimated")
            #expect(row.completionTokens == 6)
            #expect(row.promptTokens > 0)
            #expect(row.cost == Money(micros: Int64(row.promptTokens + 12)))
            try await expectBooksBalance(gateway)
        }
    }

    @Test func aClientThatLeavesMidStreamPaysOnlyForWhatWasRelayed() async throws {
        try await GatewayHarness.run { gateway in
            let response = try await gateway.http.execute(
                gateway.request(chat("m", stream: true, extra: #""fake":{"tokens":200,"delay_ms":30}"#)), timeout: .seconds(10))
            var received = ""
            for try await piece in response.body {
                received += String(buffer: piece)
                if received.components(separatedBy: "\"content\":\"").count > 5 { break }
            }
            let account = try await gateway.settled()
            let row = try #require(try await gateway.ledger().first)
            #expect(row.status == "client_closed")
            #expect(row.endReason == "client_closed")
            #expect(row.usageSource == "estimated")
            #expect(row.completionTokens >= 4 && row.completionTokens <= 8, "relayed \(row.completionTokens) tokens")
            #expect(row.cost == Money(micros: Int64(row.promptTokens + 2 * row.completionTokens)))
            #expect(account.held == .zero)
            try await expectBooksBalance(gateway)
        }
    }

    @Test func anUpstreamThatDiesMidStreamChargesWhatReachedTheClient() async throws {
        try await GatewayHarness.run { gateway in
            let reply = try await gateway.post("/v1/chat/completions", chat("m", stream: true, extra: #""fake":{"die_after":3}"#))
            #expect(!reply.events.contains("[DONE]"))
            let row = try #require(try await gateway.ledger().first)
            #expect(row.status == "failed")
            #expect(row.completionTokens <= 3)
            try await expectBooksBalance(gateway)
        }
    }

    @Test func perSecondAndPerRequestPrices() async throws {
        try await GatewayHarness.run { gateway in
            _ = try await gateway.post("/v1/chat/completions", chat("m-second", stream: true, extra: #""fake":{"tokens":5,"delay_ms":40}"#))
            _ = try await gateway.post("/v1/chat/completions", chat("m-request"))
            let rows = try await gateway.ledger()
            let second = try #require(rows.first { $0.open.model == "m-second" })
            let generation = try #require(second.generationMillis)
            #expect(generation >= 200)
            #expect(second.cost == Money(micros: generation * 1000))
            #expect(rows.first { $0.open.model == "m-request" }?.cost == Money("0.01"))
            try await expectBooksBalance(gateway)
        }
    }

    @Test func theAccountsMultiplierApplies() async throws {
        try await GatewayHarness.run { gateway in
            let patch = try await gateway.post(
                "/admin/v1/accounts/\(gateway.accountID)", #"{"price_multiplier":"0.5"}"#, auth: gateway.adminKey, method: .PATCH)
            #expect(patch.json["price_multiplier"] == "0.5")
            _ = try await gateway.post("/v1/chat/completions", chat("m-request"))
            #expect(try await gateway.ledger().first?.cost == Money("0.005"))
        }
    }

    @Test func aHoldTheBalanceCannotCoverIsRefusedWith402AndChangesNothing() async throws {
        try await GatewayHarness.run(balance: "0.005") { gateway in
            let reply = try await gateway.post("/v1/chat/completions", chat("m-request"))
            #expect(reply.status == 402)
            #expect(reply.json["error"]?["type"] == "insufficient_quota")
            #expect(try await gateway.ledger().isEmpty)
            #expect(try await gateway.account.balance == Money("0.005"))
            #expect(gateway.upstream.requests.isEmpty)
        }
    }

    /// 200 callers at once against a balance that covers 50 requests: exactly 50 are served, the rest
    /// get 402, the balance ends at zero, never below, and equals the ledger to the micro-unit.
    @Test(arguments: GatewayHarness.Database.available)
    func twoHundredConcurrentRequestsAgainstABalanceForFifty(_ database: GatewayHarness.Database) async throws {
        try await GatewayHarness.run(balance: "0.50", database: database) { gateway in
            let statuses = try await withThrowingTaskGroup(of: Int.self) { group in
                for _ in 0..<200 {
                    group.addTask {
                        try await gateway.post("/v1/chat/completions", chat("m-request", extra: #""fake":{"tokens":2,"delay_ms":5}"#)).status
                    }
                }
                return try await group.reduce(into: [Int]()) { $0.append($1) }
            }
            #expect(statuses.filter { $0 == 200 }.count == 50)
            #expect(statuses.filter { $0 == 402 }.count == 150)
            let account = try await gateway.settled()
            #expect(account.balance == .zero)
            #expect(account.held == .zero)
            let rows = try await gateway.ledger()
            #expect(rows.count == 50)
            #expect(rows.reduce(Money.zero) { $0 + $1.cost } == Money("0.50"))
        }
    }
}
