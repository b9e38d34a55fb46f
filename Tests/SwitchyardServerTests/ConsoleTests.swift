import Foundation
import SwitchyardCore
import Testing

@testable import SwitchyardServer

/// The web console as the binary serves it, and the reads it relies on.
@Suite(.timeLimit(.minutes(2))) struct ConsoleTests {
    static let consoleDirectory = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("console")

    @Test func theEmbeddedFilesAreExactlyTheConsoleFolder() throws {
        let base = Self.consoleDirectory.standardizedFileURL.path
        let enumerator = try #require(FileManager.default.enumerator(atPath: base))
        var onDisk: [String: [UInt8]] = [:]
        while let name = enumerator.nextObject() as? String {
            var isDirectory: ObjCBool = false
            let path = base + "/" + name
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue,
                !(name.split(separator: "/").last ?? "").hasPrefix(".")
            else { continue }
            onDisk[name] = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        }
        #expect(!onDisk.isEmpty)
        let embedded = ConsoleController.files.mapValues { Array($0.bytes.readableBytesView) }
        #expect(
            Set(embedded.keys) == Set(onDisk.keys.filter { embedded[$0] != nil || !$0.hasSuffix(".md") }),
            "console/ and ConsoleAssets.swift differ: run scripts/embed-console.py")
        for (name, bytes) in onDisk where embedded[name] != nil {
            #expect(embedded[name] == bytes, "\(name) differs from its embedded copy: run scripts/embed-console.py")
        }
    }

    @Test func thePageIsServedWithAStrictPolicy() async throws {
        try await GatewayHarness.run { gateway in
            let page = try await gateway.get("/", auth: nil)
            #expect(page.status == 200)
            #expect(page.header("content-type")?.hasPrefix("text/html") == true)
            let policy = try #require(page.header("content-security-policy"))
            #expect(policy.contains("default-src 'none'") && policy.contains("script-src 'self'"))
            #expect(!policy.contains("unsafe"))
            #expect(page.header("x-content-type-options") == "nosniff")
            #expect(try await gateway.get("/console/../Package.swift", auth: nil).status == 404)
            #expect(try await gateway.get("/console/nothing.js", auth: nil).status == 404)
        }
    }

    @Test func oneLedgerRowAndTheDailySummaryOfTheCallersAccount() async throws {
        try await GatewayHarness.run { gateway in
            let first = try await gateway.post("/v1/chat/completions", chat("m"))
            _ = try await gateway.post("/v1/chat/completions", chat("m"))
            let id = try #require(first.json["id"]?.stringValue)
            _ = try await gateway.settled()
            let row = try await gateway.get("/v1/usage/\(id)")
            #expect(row.status == 200)
            #expect(row.json["id"]?.stringValue == id && row.json["status"] == "completed")
            #expect(row.json["timings_ms"]?["first_token"] != nil)
            let summary = try await gateway.get("/v1/usage/summary")
            let day = try #require(summary.json["data"]?.arrayValue?.first)
            #expect(day["model"] == "m" && day["requests"] == 2)
            let rows = try await gateway.ledger()
            let total = rows.reduce(Money.zero) { $0 + $1.cost }
            #expect(day["cost"]?.stringValue == total.description)

            let other = try await Accounts(store: gateway.store).createAccount(
                id: "c-\(UUID().uuidString.prefix(6))", name: "c", balance: Money(micros: 1_000_000))
            let otherKey = try await Accounts(store: gateway.store).createKey(
                accountID: other.id, label: "", models: nil, expiresAt: nil
            ).secret
            #expect(try await gateway.get("/v1/usage/\(id)", auth: otherKey).status == 404)
            #expect(try await gateway.get("/v1/usage/summary", auth: otherKey).json["data"] == .array([]))

            let models = try await gateway.get("/v1/models")
            let m = try #require(models.json["data"]?.arrayValue?.first { $0["id"] == "m" })
            #expect(m["pricing"]?["kind"] == "tokens" && m["pricing"]?["input_per_1k"] == "0.001")
            let admin = try await gateway.get("/admin/v1/models", auth: "sk-admin-test")
            #expect(admin.json["data"]?.arrayValue?.first { $0["id"] == "m" }?["deployments"]?.arrayValue?.count == 1)
            #expect(try await gateway.get("/admin/v1/usage/summary", auth: "sk-admin-test").status == 200)
        }
    }
}
