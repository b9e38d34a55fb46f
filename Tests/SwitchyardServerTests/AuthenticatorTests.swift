import Foundation
import Logging
import NIOPosix
import SwitchyardCore
import SwitchyardStore
import Testing

@testable import SwitchyardServer

/// A key the store does not know is remembered as unknown for the cache's lifetime: a client
/// retrying a wrong key costs no query each time. The store is real; keys are written into it
/// behind the authenticator's back, so a refusal shows the store was not asked.
@Suite(.timeLimit(.minutes(1))) struct AuthenticatorTests {
    static func withStore(_ body: (SQLBillingStore) async throws -> Void) async throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("switchyard-\(UUID().uuidString).sqlite").path
        defer { for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) } }
        let store = try await SQLBillingStore.open(
            url: "sqlite:\(path)", logger: Logger(label: "test"), eventLoopGroup: MultiThreadedEventLoopGroup.singleton)
        try await store.migrate()
        try await store.createAccount(
            Account(id: "acct", name: "A", balance: Money(micros: 1_000), multiplierPPM: 1_000_000, status: .active,
                models: nil, createdAt: 1_700_000_000))
        do {
            try await body(store)
        } catch {
            await store.close()
            throw error
        }
        await store.close()
    }

    /// Writes a key with this secret straight into the store.
    static func plant(_ secret: String, id: String, in store: SQLBillingStore) async throws {
        try await store.createKey(
            APIKey(id: id, accountID: "acct", hash: Secrets.hash(secret), prefix: String(secret.prefix(10)), label: id,
                createdAt: 1_700_000_000))
    }

    static func accepts(_ authenticator: Authenticator, _ secret: String) async -> Bool {
        (try? await authenticator.authenticate(secret)) != nil
    }

    @Test func anUnknownKeyIsRememberedForTheCachesLifetime() async throws {
        try await Self.withStore { store in
            let clock = ManualClock()
            let authenticator = Authenticator(store: store, ttl: .seconds(5), clock: clock)
            await #expect(throws: GatewayError.self) { try await authenticator.authenticate("sk-sy-later") }
            try await Self.plant("sk-sy-later", id: "key_later", in: store)
            // Still unknown here: the store was not asked again.
            #expect(await !Self.accepts(authenticator, "sk-sy-later"))
            clock.advance(by: .seconds(4))
            #expect(await !Self.accepts(authenticator, "sk-sy-later"))
            // Once the entry is older than the lifetime, the store is asked and knows it.
            clock.advance(by: .seconds(2))
            #expect(await Self.accepts(authenticator, "sk-sy-later"))

            // Forgotten as unknown (a key made here), it is found at once.
            #expect(await !Self.accepts(authenticator, "sk-sy-made"))
            try await Self.plant("sk-sy-made", id: "key_made", in: store)
            authenticator.forgetUnknown(digest: Secrets.hash("sk-sy-made"))
            #expect(await Self.accepts(authenticator, "sk-sy-made"))

            // And so is everything after the replicas' resynchronization.
            #expect(await !Self.accepts(authenticator, "sk-sy-resync"))
            try await Self.plant("sk-sy-resync", id: "key_resync", in: store)
            authenticator.apply(.resynchronized)
            #expect(await Self.accepts(authenticator, "sk-sy-resync"))
        }
    }

    /// While the replicas' events cannot reach this one, no lookup is cached, a refusal neither.
    @Test func anUntrustedCacheRemembersNothing() async throws {
        try await Self.withStore { store in
            let authenticator = Authenticator(store: store, clock: ManualClock(), cacheTrusted: { false })
            #expect(await !Self.accepts(authenticator, "sk-sy-elsewhere"))
            try await Self.plant("sk-sy-elsewhere", id: "key_elsewhere", in: store)
            #expect(await Self.accepts(authenticator, "sk-sy-elsewhere"))
        }
    }
}
