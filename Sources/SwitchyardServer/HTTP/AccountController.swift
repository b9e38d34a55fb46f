import Hummingbird
import NIOCore
import SwitchyardCore

/// What a key holder may read of their own account: `GET /v1/account`, `GET /v1/usage`, and the seed
/// service's balance query `GET /api_user/info?openid=KEY&type=json`.
struct AccountController: Sendable {
    let authenticator: Authenticator
    let store: any BillingStore
    /// The config's `limits:`, to report the limits that apply to the caller.
    let limits: LimitsConfig

    func addRoutes(to router: Router<GatewayRequestContext>) {
        router.get("v1/account") { request, _ in
            try await describe(try await authenticator.authenticate(request.bearerToken))
        }
        router.get("v1/usage") { request, _ in
            let caller = try await authenticator.authenticate(request.bearerToken)
            return try await UsageListing(store: store).respond(request, accountID: caller.account.id)
        }
        if let queries = store as? any LedgerQueries {
            router.get("v1/usage/summary") { request, _ in
                let caller = try await authenticator.authenticate(request.bearerToken)
                return try await UsageReads(queries: queries).summary(request, accountID: caller.account.id)
            }
            router.get("v1/usage/{id}") { request, context in
                let caller = try await authenticator.authenticate(request.bearerToken)
                return try await UsageReads(queries: queries).row(try context.parameters.require("id"), accountID: caller.account.id)
            }
        }
        router.get("api_user/info") { request, _ in
            let caller = try await authenticator.authenticate(anyOf: [request.uri.queryParameters.get("openid"), request.bearerToken])
            if request.uri.queryParameters.get("type") == "json" { return try await describe(caller) }
            let account = try await store.account(id: caller.account.id)
            let text = account.map {
                "account \($0.id) (\($0.name)): balance \($0.balance), held \($0.held), available \($0.available)\n"
            } ?? ""
            return Response(
                status: .ok, headers: [.contentType: "text/plain; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(string: text)))
        }
    }

    /// The account as it is now (balance and holds read fresh, not from the key cache), with the key.
    /// `limits` are the effective ones (own value, else the config's override, else its default; a
    /// null field is no limit), not only what was set on the account or key.
    private func describe(_ caller: Caller) async throws -> Response {
        let account = try await store.account(id: caller.account.id) ?? caller.account
        var object = BillingJSON.account(account)
        object["limits"] = BillingJSON.limits(limits.effective(for: account))
        var key = BillingJSON.key(caller.key)
        key["limits"] = BillingJSON.limits(limits.effective(for: caller.key))
        object["key"] = .object(key)
        return Relay.json(object)
    }
}
