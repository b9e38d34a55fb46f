import AsyncHTTPClient
import Logging
import NIOCore
import SwitchyardCore
import Testing

@testable import SwitchyardServer

/// The drain at shutdown, driven in-process (tests/sdk/test_shutdown.py sends the real SIGTERM).
@Suite(.timeLimit(.minutes(2))) struct DrainTests {
    func stream(_ gateway: GatewayHarness, tokens: Int) -> StopTests.OpenStream {
        StopTests.OpenStream(
            gateway,
            gateway.request(
                chat("m", stream: true, extra: #""stream_options":{"include_usage":true},"fake":{"tokens":\#(tokens),"delay_ms":20}"#)))
    }

    @Test func drainingRefusesNewWorkLetsShortStreamsEndAndSettlesTheRestForWhatTheyDelivered() async throws {
        try await GatewayHarness.run { gateway in
            let short = (0..<3).map { _ in stream(gateway, tokens: 10) }  // about 0.2 s
            let long = (0..<5).map { _ in stream(gateway, tokens: 400) }  // about 8 s
            for open in short + long { try await open.waitForContent(1) }

            let drain = Task {
                await gateway.lifecycle.drain(grace: .milliseconds(1500), settleWithin: .seconds(10), logger: Logger(label: "drain"))
            }
            while gateway.lifecycle.phase == .serving { try await Task.sleep(for: .milliseconds(2)) }
            let ready = try await gateway.get("/ready", auth: nil)
            #expect(ready.status == 503 && ready.json["status"]?.stringValue == "draining")
            #expect(try await gateway.get("/health", auth: nil).status == 200)
            let refused = try await gateway.post("/v1/chat/completions", chat("m"))
            #expect(refused.status == 503 && refused.json["error"]?["code"]?.stringValue == "shutting_down")
            #expect(refused.header("connection") == "close")
            await drain.value

            for open in short + long { _ = try await open.task.value }
            #expect(short.allSatisfy { $0.text.hasSuffix("data: [DONE]\n\n") })
            for open in long {
                #expect(open.text.contains(#""code":"shutting_down""#))
                #expect(!open.text.contains("[DONE]"))
            }
            let account = try await gateway.settled()
            #expect(account.held == .zero)
            let rows = try await gateway.ledger()
            #expect(rows.count == 8 && rows.allSatisfy { $0.status != "running" })
            #expect(rows.filter { $0.status == "completed" }.count == 3)
            for open in long {
                let row = try #require(rows.first { $0.open.requestID == open.id })
                #expect(row.status == "interrupted" && row.endReason == "shutdown")
                #expect(row.completionTokens == StopTests.contentChunks(open.text))
                #expect(row.cost == Money(micros: Int64(row.promptTokens + 2 * row.completionTokens)))
                #expect(row.cost > .zero)
            }
            #expect(BillingTests.start - account.balance == rows.reduce(Money.zero) { $0 + $1.cost })
        }
    }

    @Test func aDrainWithNothingInFlightEndsAtOnce() async throws {
        try await GatewayHarness.run { gateway in
            _ = try await gateway.post("/v1/chat/completions", chat("m"))
            let started = ContinuousClock.now
            await gateway.lifecycle.drain(grace: .seconds(30), settleWithin: .seconds(10), logger: Logger(label: "drain"))
            #expect(ContinuousClock.now - started < .seconds(5))
            #expect(gateway.lifecycle.phase == .draining)
        }
    }
}
