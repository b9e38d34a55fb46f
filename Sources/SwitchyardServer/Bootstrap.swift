import Crypto
import Foundation
import Logging
import SwitchyardCore

/// What the gateway does with its database before serving: migrate, release the holds a crash left
/// behind, settle on the admin key, and on an empty database create the demo account `test`.
public enum Bootstrap {
    public struct Outcome: Sendable {
        /// SHA-256 of the admin key.
        public var adminDigest: [UInt8]
        /// Lines to show the operator once (a generated admin key, the demo account's key).
        public var announcements: [String]
        public var recovered: Int
    }

    static let adminSetting = "admin_key_sha256"
    public static let demoAccount = "test"

    public static func prepare(config: Config, store: any BillingStore, instance: String) async throws -> Outcome {
        try await store.migrate()
        let now = SystemClock().unixMillis
        let recovered = try await store.recoverInterrupted(instance: instance, at: now)
        var announcements: [String] = []
        if recovered > 0 {
            announcements.append("released the holds of \(recovered) request(s) interrupted by the last shutdown")
        }

        let digest: [UInt8]
        if let key = config.adminKey {
            digest = Secrets.hash(key)
        } else if let stored = try await store.setting(adminSetting), let bytes = hexBytes(stored), bytes.count == 32 {
            digest = bytes
        } else {
            let key = Secrets.newKey(prefix: "sk-admin-")
            digest = Secrets.hash(key)
            try await store.setSetting(adminSetting, hex(digest))
            announcements.append(
                "generated an admin key (shown only now; set SWITCHYARD_ADMIN_KEY to choose your own): \(key)")
        }

        announcements += try await prepareDemo(config: config, store: store)

        if try await store.accounts(limit: 1, after: nil).isEmpty {
            let accounts = Accounts(store: store)
            _ = try await accounts.createAccount(id: demoAccount, name: "Demo account", balance: Money(micros: 10_000_000))
            let created = try await accounts.createKey(accountID: demoAccount, label: "demo", models: nil, expiresAt: nil)
            announcements.append(
                "created the demo account '\(demoAccount)' with a balance of 10.00 and the key (shown only now): \(created.secret)")
            announcements.append(
                "try: curl http://\(config.server.host):\(config.server.port)/v1/chat/completions "
                    + "-H 'authorization: Bearer \(created.secret)' -H 'content-type: application/json' "
                    + "-d '{\"model\":\"\(config.models.first?.name ?? "MODEL")\",\"messages\":[{\"role\":\"user\",\"content\":\"Hello\"}]}'")
        }
        return Outcome(adminDigest: digest, announcements: announcements, recovered: recovered)
    }

    static let demoKeySetting = "demo_key_id"
    static let demoKeyLabel = "public demo key (config: demo)"

    /// The configured public demo key (`demo:`): its account is created when missing, its key made
    /// (the id follows from the key, so a changed key is a new one) with the configured limits, and
    /// the key a previous start made is revoked when the config no longer names it — so removing
    /// `demo:` turns the public key off.
    static func prepareDemo(config: Config, store: any BillingStore) async throws -> [String] {
        let accounts = Accounts(store: store)
        let previous = try await store.setting(demoKeySetting)
        guard let demo = config.demo else {
            if let previous, !previous.isEmpty {
                _ = try await store.revokeKey(id: previous, at: accounts.now)
                try await store.setSetting(demoKeySetting, "")
                return ["revoked the public demo key: the config names none"]
            }
            return []
        }
        if try await store.account(id: demo.account) == nil {
            _ = try await accounts.createAccount(id: demo.account, name: "Demo account", balance: demo.balance)
        }
        let hash = Secrets.hash(demo.key)
        let id = "key_demo_" + hex(hash).prefix(16)
        if let previous, !previous.isEmpty, previous != id { _ = try await store.revokeKey(id: previous, at: accounts.now) }
        if let existing = try await store.updateKey(id: id, KeyPatch(limits: .some(demo.limits))) {
            guard existing.revokedAt == nil else {
                return ["the public demo key of account '\(demo.account)' was revoked by an operator; choose another under demo.key"]
            }
        } else {
            try await store.createKey(
                APIKey(
                    id: id, accountID: demo.account, hash: hash, prefix: String(demo.key.prefix(10)), label: demoKeyLabel,
                    createdAt: accounts.now, limits: demo.limits))
        }
        try await store.setSetting(demoKeySetting, id)
        let limits = demo.limits
        let described = [
            limits.requestsPerMinute.map { "\($0) requests/min" }, limits.tokensPerMinute.map { "\($0) tokens/min" },
            limits.concurrent.map { "\($0) at once" },
        ].compactMap { $0 }.joined(separator: ", ")
        return ["demo account '\(demo.account)' answers to the public key '\(demo.key)' (\(described))"]
    }

    static func hex(_ bytes: [UInt8]) -> String {
        bytes.map { String(format: "%02x", $0) }.joined()
    }

    static func hexBytes(_ text: String) -> [UInt8]? {
        guard text.count % 2 == 0 else { return nil }
        var bytes: [UInt8] = []
        var index = text.startIndex
        while index < text.endIndex {
            let next = text.index(index, offsetBy: 2)
            guard let byte = UInt8(text[index..<next], radix: 16) else { return nil }
            bytes.append(byte)
            index = next
        }
        return bytes
    }
}
