import Foundation
import SwitchyardCore

/// Account and key administration, shared by the admin API and the CLI.
public struct Accounts: Sendable {
    let store: any BillingStore
    /// Told about revocations and account changes so that cached lookups are dropped at once.
    let authenticator: Authenticator?
    let clock: any GatewayClock

    public init(store: any BillingStore, clock: any GatewayClock = SystemClock()) {
        self.store = store
        self.authenticator = nil
        self.clock = clock
    }

    init(store: any BillingStore, authenticator: Authenticator?, clock: any GatewayClock) {
        self.store = store
        self.authenticator = authenticator
        self.clock = clock
    }

    /// Unix seconds, as accounts, keys and credits record time.
    var now: Int64 { clock.unixSeconds }

    /// A new account; its id is `id` when given (the seed's `openid`), else generated.
    public func createAccount(
        id: String?, name: String, balance: Money, multiplierPPM: Int64 = 1_000_000, models: [String]? = nil,
        status: Account.Status = .active, limits: LimitsConfig.Caller? = nil
    ) async throws -> Account {
        if let id { try Self.validateID(id) }
        let account = Account(
            id: id ?? Secrets.newID(prefix: "acct_"), name: name, balance: balance, multiplierPPM: multiplierPPM,
            status: status, models: models, createdAt: now, limits: Self.normalized(limits))
        do {
            try await store.createAccount(account)
        } catch BillingStoreError.conflict {
            throw GatewayError(
                status: 409, message: "An account with id '\(account.id)' exists already.", type: "invalid_request_error",
                param: "id", code: "conflict")
        }
        return account
    }

    public func updateAccount(id: String, _ patch: AccountPatch) async throws -> Account {
        var patch = patch
        if let limits = patch.limits { patch.limits = .some(Self.normalized(limits)) }
        guard let account = try await store.updateAccount(id: id, patch) else { throw GatewayError.accountNotFound(id) }
        authenticator?.forget(accountID: id)
        return account
    }

    public func account(id: String) async throws -> Account {
        guard let account = try await store.account(id: id) else { throw GatewayError.accountNotFound(id) }
        return account
    }

    /// A new key; the secret is returned here and never again.
    public func createKey(
        accountID: String, label: String, models: [String]?, expiresAt: Int64?, limits: LimitsConfig.Caller? = nil
    ) async throws -> (key: APIKey, secret: String) {
        let secret = Secrets.newKey(prefix: "sk-sy-")
        let key = APIKey(
            id: Secrets.newID(prefix: "key_"), accountID: accountID, hash: Secrets.hash(secret),
            prefix: String(secret.prefix(10)), label: label, models: models, expiresAt: expiresAt, createdAt: now,
            limits: Self.normalized(limits))
        do {
            try await store.createKey(key)
        } catch BillingStoreError.notFound {
            throw GatewayError.accountNotFound(accountID)
        }
        authenticator?.forgetUnknown(digest: key.hash)
        return (key, secret)
    }

    /// Changes a key's label, allow-list, expiry or limits; the change is seen at once by this process.
    public func updateKey(id: String, _ patch: KeyPatch) async throws -> APIKey {
        var patch = patch
        if let limits = patch.limits { patch.limits = .some(Self.normalized(limits)) }
        guard let key = try await store.updateKey(id: id, patch) else {
            throw GatewayError(
                status: 404, message: "No key with id '\(id)'.", type: "invalid_request_error", code: "not_found")
        }
        authenticator?.forget(keyID: id)
        return key
    }

    public func revokeKey(id: String) async throws {
        guard try await store.revokeKey(id: id, at: now) else {
            throw GatewayError(
                status: 404, message: "No key with id '\(id)'.", type: "invalid_request_error", code: "not_found")
        }
        authenticator?.forget(keyID: id)
    }

    public func addCredit(accountID: String, amount: Money, reason: String, idempotencyKey: String?) async throws -> (
        account: Account, applied: Bool
    ) {
        switch try await store.addCredit(
            accountID: accountID, amount: amount, reason: reason, idempotencyKey: idempotencyKey, at: now)
        {
        case .applied(let account): return (account, true)
        case .duplicate(let account): return (account, false)
        case .accountNotFound: throw GatewayError.accountNotFound(accountID)
        }
    }

    /// Limits with no field set are no limits: stored as NULL, shown as null.
    static func normalized(_ limits: LimitsConfig.Caller?) -> LimitsConfig.Caller? {
        limits?.isEmpty == false ? limits : nil
    }

    static func validateID(_ id: String) throws {
        let allowed = id.unicodeScalars.allSatisfy {
            CharacterSet.alphanumerics.contains($0) || $0 == "-" || $0 == "_" || $0 == "."
        }
        guard !id.isEmpty, id.count <= 64, allowed else {
            throw GatewayError.invalidValue("id", "Account ids are 1–64 letters, digits, '-', '_' or '.'.")
        }
    }
}

extension GatewayError {
    static func accountNotFound(_ id: String) -> GatewayError {
        GatewayError(status: 404, message: "No account with id '\(id)'.", type: "invalid_request_error", code: "not_found")
    }
}
