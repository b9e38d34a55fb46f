import AsyncHTTPClient
import Foundation
import NIOCore
import SwitchyardCore
import SwitchyardServer
import Testing

/// Drawing tasks (midjourney-proxy style) through the gateway and the test model: held at
/// submission, captured when the task succeeds, released when it fails, visible only to their account.
@Suite(.timeLimit(.minutes(2))) struct TaskTests {
    static func withTasks(_ config: inout Config, _: String) {
        config.providers.append(.init(name: "mj", kind: .test, test: .init(tokens: 4, tokenDelay: .milliseconds(50))))
        config.models.append(
            .init(
                name: "mj-model", endpoints: [.midjourney], deployments: [.init(provider: "mj", model: "mj")],
                price: .perAction(["IMAGINE": 100_000_000, "UPSCALE": 20_000_000, "*": 50_000_000])))
    }

    func submit(_ gateway: GatewayHarness, _ route: String, _ body: String, auth: String? = nil) async throws
        -> GatewayHarness.Reply
    {
        var request = HTTPClientRequest(url: gateway.base + "/mj/submit/\(route)")
        request.method = .POST
        request.headers.add(name: "mj-api-secret", value: auth ?? gateway.key)
        request.body = .bytes(ByteBuffer(string: body))
        return try await gateway.execute(request)
    }

    func waitFor(_ gateway: GatewayHarness, _ id: String, status: String) async throws -> JSONValue {
        let deadline = ContinuousClock.now + .seconds(10)
        while true {
            let fetched = try await gateway.get("/mj/task/\(id)/fetch")
            if fetched.json["status"]?.stringValue == status { return fetched.json }
            guard ContinuousClock.now < deadline else { throw CancellationError() }
            try await Task.sleep(for: .milliseconds(40))
        }
    }

    @Test func aTaskIsHeldAtSubmissionAndCapturedWhenItSucceeds() async throws {
        try await GatewayHarness.run(configure: Self.withTasks) { gateway in
            let before = try await gateway.account
            let submitted = try await submit(gateway, "imagine", #"{"prompt":"a red fox"}"#)
            #expect(submitted.status == 200)
            #expect(submitted.json["code"] == 1)
            let id = try #require(submitted.json["result"]?.stringValue)
            let held = try await gateway.account
            #expect(held.held == Money(micros: 100_000))
            #expect(held.balance == before.balance)
            let running = try #require(try await gateway.ledger().first)
            #expect(running.status == "running" && running.open.api == "midjourney")

            let done = try await waitFor(gateway, id, status: "SUCCESS")
            #expect(done["id"]?.stringValue == id)
            #expect(done["imageUrl"]?.stringValue?.hasPrefix("data:image/png;base64,") == true)
            let after = try await gateway.settled()
            #expect(after.held == .zero)
            #expect(after.balance == before.balance - Money(micros: 100_000))
            let row = try #require(try await gateway.ledger().first)
            #expect(row.status == "completed" && row.units == 1 && row.unit == "task")
            // Polled again: settled once, not twice.
            _ = try await gateway.get("/mj/task/\(id)/fetch")
            #expect(try await gateway.account.balance == before.balance - Money(micros: 100_000))

            let upscale = try await submit(gateway, "change", #"{"action":"UPSCALE","index":1,"taskId":"\#(id)"}"#)
            #expect(upscale.json["code"] == 1)
            _ = try await waitFor(gateway, try #require(upscale.json["result"]?.stringValue), status: "SUCCESS")
            _ = try await gateway.settled()
            #expect(try await gateway.account.balance == before.balance - Money(micros: 120_000))
        }
    }

    @Test func aFailedTaskIsReleasedAndOthersCannotSeeIt() async throws {
        try await GatewayHarness.run(configure: Self.withTasks) { gateway in
            let before = try await gateway.account
            let submitted = try await submit(gateway, "imagine", #"{"prompt":"please fail"}"#)
            let id = try #require(submitted.json["result"]?.stringValue)

            let other = try await Accounts(store: gateway.store).createAccount(
                id: "o-\(UUID().uuidString.prefix(6))", name: "o", balance: Money(micros: 10_000_000))
            let otherKey = try await Accounts(store: gateway.store).createKey(
                accountID: other.id, label: "", models: nil, expiresAt: nil
            ).secret
            #expect(try await gateway.get("/mj/task/\(id)/fetch", auth: otherKey).status == 404)
            let listed = try await gateway.post("/mj/task/list-by-condition", #"{"ids":["\#(id)"]}"#, auth: otherKey)
            #expect(listed.json == .array([]))

            let failed = try await waitFor(gateway, id, status: "FAILURE")
            #expect(failed["failReason"]?.stringValue?.isEmpty == false)
            let after = try await gateway.settled()
            #expect(after.balance == before.balance && after.held == .zero)
            let row = try #require(try await gateway.ledger().first)
            #expect(row.status == "failed" && row.cost == .zero)
            let mine = try await gateway.post("/mj/task/list-by-condition", #"{"ids":["\#(id)"]}"#)
            #expect(mine.json.arrayValue?.first?["status"] == "FAILURE")

            let refused = try await submit(gateway, "imagine", #"{"prompt":""}"#)
            #expect(refused.json["code"] != 1)
            _ = try await gateway.settled()
            #expect(try await gateway.account.balance == before.balance)
        }
    }

    @Test func aRestartDoesNotReleaseARunningTask() async throws {
        try await GatewayHarness.run(configure: Self.withTasks) { gateway in
            let submitted = try await submit(gateway, "imagine", #"{"prompt":"across a restart"}"#)
            let id = try #require(submitted.json["result"]?.stringValue)
            // What the next start of this instance does: release the rows of requests it was running.
            #expect(try await gateway.store.recoverInterrupted(instance: "test", at: 0) == 0)
            #expect(try await gateway.account.held == Money(micros: 100_000))
            _ = try await waitFor(gateway, id, status: "SUCCESS")
            #expect(try await gateway.settled().held == .zero)
            #expect(try await gateway.ledger().first?.status == "completed")
        }
    }

    @Test func theWatcherSettlesTasksNobodyPolls() async throws {
        try await GatewayHarness.run(configure: Self.withTasks) { gateway in
            let before = try await gateway.account
            let submitted = try await submit(gateway, "imagine", #"{"prompt":"unwatched"}"#)
            #expect(submitted.json["code"] == 1)
            let deadline = ContinuousClock.now + .seconds(10)
            while try await gateway.account.held != .zero {
                guard ContinuousClock.now < deadline else { throw CancellationError() }
                try await Task.sleep(for: .milliseconds(100))
            }
            #expect(try await gateway.account.balance == before.balance - Money(micros: 100_000))
        }
    }
}
