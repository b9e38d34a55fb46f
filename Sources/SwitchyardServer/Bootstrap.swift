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
        let now = Int64(Date().timeIntervalSince1970 * 1000)
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
