import SwitchyardCore
import SwitchyardStore
import Testing

extension SQLBillingStoreTests {
    @Test(arguments: Backend.available)
    func accountsAreCreatedReadAndPatched(_ backend: Backend) async throws {
        try await withStore(backend) { store, fixture in
            let account = fixture.account("a", balance: 5_000_000, models: ["qwen", "yi-34b"])
            try await store.createAccount(account)
            #expect(try await store.account(id: account.id) == account)
            #expect(try await store.account(id: fixture.id("missing")) == nil)

            let renamed = try await store.updateAccount(id: account.id, AccountPatch(name: "Renamed", multiplierPPM: 1_000_000))
            var expected = account
            expected.name = "Renamed"
            expected.multiplierPPM = 1_000_000
            #expect(renamed == expected)

            let suspended = try await store.updateAccount(id: account.id, AccountPatch(status: .suspended, models: .some(["yi"])))
            expected.status = .suspended
            expected.models = ["yi"]
            #expect(suspended == expected)

            // `.some(nil)` lifts the allow-list; a plain nil leaves it alone.
            let cleared = try await store.updateAccount(id: account.id, AccountPatch(models: .some(nil)))
            expected.models = nil
            #expect(cleared == expected)
            #expect(try await store.updateAccount(id: account.id, AccountPatch()) == expected)
            #expect(try await store.account(id: account.id) == expected)
            #expect(try await store.updateAccount(id: fixture.id("missing"), AccountPatch(name: "x")) == nil)
        }
    }

    @Test(arguments: Backend.available)
    func accountAndKeyLimitsRoundTripAndClear(_ backend: Backend) async throws {
        try await withStore(backend) { store, fixture in
            var account = fixture.account("a", balance: 10)
            account.limits = LimitsConfig.Caller(requestsPerMinute: 600, tokensPerMinute: 200_000, concurrent: 10)
            try await store.createAccount(account)
            #expect(try await store.account(id: account.id) == account)
            var plain = fixture.account("b")
            try await store.createAccount(plain)
            #expect(try await store.account(id: plain.id)?.limits == nil)

            // A patch replaces the limits as a whole; a plain nil leaves them alone; `.some(nil)` clears.
            let patched = try await store.updateAccount(id: account.id, AccountPatch(limits: .some(.init(concurrent: 3))))
            account.limits = LimitsConfig.Caller(concurrent: 3)
            #expect(patched == account)
            #expect(try await store.updateAccount(id: account.id, AccountPatch(name: "Renamed"))?.limits == account.limits)
            let cleared = try await store.updateAccount(id: account.id, AccountPatch(limits: .some(nil)))
            #expect(cleared?.limits == nil)
            #expect(try await store.account(id: account.id)?.limits == nil)
            // Limits with no field set are stored as not set.
            plain.limits = LimitsConfig.Caller()
            #expect(try await store.updateAccount(id: plain.id, AccountPatch(limits: .some(plain.limits)))?.limits == nil)

            var key = fixture.key("k1", account: "a", hashByte: 1)
            key.limits = LimitsConfig.Caller(requestsPerMinute: 5, tokensPerMinute: 1_000_000_000)
            let other = fixture.key("k2", account: "a", hashByte: 2)
            try await store.createKey(key)
            try await store.createKey(other)
            let found = try #require(try await store.key(hash: key.hash))
            #expect(found.key == key)
            #expect(found.key.limits == LimitsConfig.Caller(requestsPerMinute: 5, tokensPerMinute: 1_000_000_000))
            #expect(found.account.limits == nil)
            #expect(try await store.keys(accountID: fixture.id("a")).map(\.limits) == [key.limits, nil])
            // The key lookup reads the account's limits too.
            _ = try await store.updateAccount(id: account.id, AccountPatch(limits: .some(.init(requestsPerMinute: 7))))
            #expect(try await store.key(hash: other.hash)?.account.limits == LimitsConfig.Caller(requestsPerMinute: 7))
        }
    }

    @Test(arguments: Backend.available)
    func aTakenAccountIDIsAConflict(_ backend: Backend) async throws {
        try await withStore(backend) { store, fixture in
            try await store.createAccount(fixture.account("a", balance: 1))
            var second = fixture.account("a", balance: 99)
            second.name = "Other"
            await #expect(throws: BillingStoreError.self) { try await store.createAccount(second) }
            #expect(try await store.account(id: fixture.id("a"))?.balance == Money(micros: 1))
        }
    }

    @Test(arguments: Backend.available)
    func accountsArePagedByID(_ backend: Backend) async throws {
        try await withStore(backend) { store, fixture in
            for name in ["a3", "a1", "a5", "a2", "a4"] {
                try await store.createAccount(fixture.account(name))
            }
            // On a shared database other tests' accounts follow ours; ours sort together by their tag.
            let start = fixture.id("")
            let first = try await store.accounts(limit: 2, after: start)
            #expect(first.map(\.id) == [fixture.id("a1"), fixture.id("a2")])
            let second = try await store.accounts(limit: 2, after: first.last?.id)
            #expect(second.map(\.id) == [fixture.id("a3"), fixture.id("a4")])
            let third = try await store.accounts(limit: 2, after: second.last?.id)
            #expect(third.first?.id == fixture.id("a5"))
            #expect(third.dropFirst().allSatisfy { !$0.id.hasPrefix(fixture.tag) })
            let all = try await store.accounts(limit: 1_000, after: nil)
            #expect(all.map(\.id) == all.map(\.id).sorted())
        }
    }

    @Test(arguments: Backend.available)
    func keysAreCreatedFoundListedAndRevoked(_ backend: Backend) async throws {
        try await withStore(backend) { store, fixture in
            let account = fixture.account("a", balance: 10)
            try await store.createAccount(account)
            var first = fixture.key("k1", account: "a", hashByte: 1)
            first.models = ["qwen"]
            first.expiresAt = 1_800_000_000
            let second = fixture.key("k2", account: "a", hashByte: 2)
            try await store.createKey(first)
            try await store.createKey(second)

            let found = try #require(try await store.key(hash: first.hash))
            #expect(found.key == first)
            #expect(found.account == account)
            #expect(try await store.key(hash: fixture.key("none", account: "a", hashByte: 9).hash) == nil)
            #expect(try await store.keys(accountID: account.id) == [first, second])

            #expect(try await store.revokeKey(id: first.id, at: 1_750_000_000))
            #expect(try await store.revokeKey(id: first.id, at: 1_760_000_000))
            #expect(try await !store.revokeKey(id: fixture.id("none"), at: 1))
            // Revoked keys are still found: the caller decides what revocation means.
            let revoked = try #require(try await store.key(hash: first.hash))
            #expect(revoked.key.revokedAt == 1_750_000_000)
            #expect(try await store.keys(accountID: account.id).map(\.revokedAt) == [1_750_000_000, nil])
        }
    }

    @Test(arguments: Backend.available)
    func keysNeedAnAccountAndAUniqueHash(_ backend: Backend) async throws {
        try await withStore(backend) { store, fixture in
            await #expect(throws: BillingStoreError.notFound("account \(fixture.id("ghost"))")) {
                try await store.createKey(fixture.key("k", account: "ghost"))
            }
            try await store.createAccount(fixture.account("a"))
            try await store.createKey(fixture.key("k1", account: "a", hashByte: 1))
            await #expect(throws: BillingStoreError.self) {
                try await store.createKey(fixture.key("k2", account: "a", hashByte: 1))
            }
            #expect(try await store.keys(accountID: fixture.id("a")).count == 1)
        }
    }

    @Test(arguments: Backend.available)
    func settingsAreReadWrittenAndOverwritten(_ backend: Backend) async throws {
        try await withStore(backend) { store, fixture in
            let name = fixture.id("setting")
            #expect(try await store.setting(name) == nil)
            try await store.setSetting(name, "one")
            #expect(try await store.setting(name) == "one")
            try await store.setSetting(name, "two")
            #expect(try await store.setting(name) == "two")
        }
    }
}
