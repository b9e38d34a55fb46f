import Foundation
import Logging
import NIOPosix
import SwitchyardCore
import SwitchyardStore
import Testing

/// The backends the store's tests run against: SQLite in a temp file always; PostgreSQL when
/// `SWITCHYARD_TEST_POSTGRES_URL` names a database (CI sets it up, see `.ci/run`).
enum Backend: String, Sendable, CustomTestStringConvertible {
    case sqlite, postgres

    static let postgresURL = ProcessInfo.processInfo.environment["SWITCHYARD_TEST_POSTGRES_URL"].flatMap {
        $0.isEmpty ? nil : $0
    }

    static let available: [Backend] = postgresURL == nil ? [.sqlite] : [.sqlite, .postgres]

    var testDescription: String { rawValue }
}

/// A fresh store for one test. SQLite gets its own file; on Postgres tests share one database (and
/// run in parallel), so they use unique ids — see `Fixture`. Its ledger writer runs as a service, as in
/// the gateway, unless `runWriter` is false (the test runs it itself, or tests the store without it).
func withStore(
    _ backend: Backend, runWriter: Bool = true, _ body: (SQLBillingStore, Fixture) async throws -> Void
) async throws {
    let url: String
    var files: [String] = []
    switch backend {
    case .sqlite:
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("switchyard-store-\(UUID()).sqlite").path
        files = [path, path + "-wal", path + "-shm"]
        url = "sqlite:" + path
    case .postgres:
        url = try #require(Backend.postgresURL)
    }
    defer {
        for file in files { try? FileManager.default.removeItem(atPath: file) }
    }
    let store = try await openStore(url)
    try await withThrowingTaskGroup(of: Void.self) { writer in
        // `close()` drains the writer and ends its `run()`.
        if runWriter { writer.addTask { try await store.ledgerWriter.run() } }
        do {
            try await store.migrate()
            try await body(store, Fixture(url: url))
        } catch {
            await store.close()
            throw error
        }
        await store.close()
        try await writer.waitForAll()
    }
}

func openStore(_ url: String) async throws -> SQLBillingStore {
    var logger = Logger(label: "store-tests")
    logger.logLevel = .info
    return try await SQLBillingStore.open(url: url, logger: logger, eventLoopGroup: MultiThreadedEventLoopGroup.singleton)
}

/// Unique names and times for one test, and records built from them.
struct Fixture: Sendable {
    /// The store's database, for tests that open a second store on it.
    var url = ""
    let tag = UUID().uuidString.lowercased()
    /// A start time of its own, so ledger queries over all accounts see only this test's rows.
    let epoch = Int64.random(in: 1_000_000_000_000...9_000_000_000_000) / 1_000 * 1_000

    func id(_ name: String) -> String { "\(tag)-\(name)" }

    func account(
        _ name: String, balance: Int64 = 0, status: Account.Status = .active, models: [String]? = nil
    ) -> Account {
        Account(
            id: id(name), name: "Account \(name)", balance: Money(micros: balance), multiplierPPM: 800_000,
            status: status, models: models, createdAt: 1_700_000_000
        )
    }

    func key(_ name: String, account: String, hashByte: UInt8 = 1) -> APIKey {
        // Unique per test: the tag's bytes, then one that tells this test's keys apart.
        let hash = Array(tag.utf8.prefix(31)) + [hashByte]
        return APIKey(
            id: id(name), accountID: id(account), hash: hash, prefix: "sk-sy-\(name)", label: "label \(name)",
            createdAt: 1_700_000_100
        )
    }

    func open(
        _ request: String, account: String, hold: Int64, instance: String = "gw-1", at offset: Int64 = 0
    ) -> LedgerOpen {
        LedgerOpen(
            requestID: id(request), accountID: id(account), keyID: id("key"), endUser: "user-7", model: "qwen",
            deployment: "local/qwen-7b", hold: Money(micros: hold), instance: id(instance), startedAt: epoch + offset
        )
    }

    func settlement(_ request: String, account: String, hold: Int64, cost: Int64) -> LedgerSettlement {
        LedgerSettlement(
            requestID: id(request), accountID: id(account), hold: Money(micros: hold), cost: Money(micros: cost),
            status: .completed, endReason: .stop, httpStatus: 200, promptTokens: 12, completionTokens: 34,
            usageSource: .reported, queueMillis: 1, loadMillis: 2, firstTokenMillis: 3, generationMillis: 4,
            finishedAt: epoch + 5_000
        )
    }
}

/// All of the store's tests, on every available backend. Split over files by topic.
@Suite(.timeLimit(.minutes(2)))
struct SQLBillingStoreTests {}
