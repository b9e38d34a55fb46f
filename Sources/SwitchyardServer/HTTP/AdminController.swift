import HTTPTypes
import Hummingbird
import NIOCore
import SwitchyardCore

/// `/admin/v1`: accounts, keys, credits and usage for the operator, authorised by the admin key.
struct AdminController: Sendable {
    let accounts: Accounts
    let store: any BillingStore
    let gate: AdminGate
    /// The catalog, for `GET /admin/v1/models`.
    var models: ModelsController?

    func addRoutes(to router: Router<GatewayRequestContext>) {
        let admin = router.group("admin/v1").add(middleware: gate)
        admin.post("accounts") { request, _ in
            let body = try await AdminBody.read(request)
            guard let name = try body.string("name") else { throw GatewayError.missingParameter("name") }
            let account = try await accounts.createAccount(
                id: try body.string("id"), name: name, balance: try body.money("balance") ?? .zero,
                multiplierPPM: try body.multiplier("price_multiplier") ?? 1_000_000, models: try body.stringList("models"),
                status: try body.status("status") ?? .active, limits: try body.limits("limits"))
            return Relay.json(BillingJSON.account(account), status: .created)
        }
        admin.get("accounts") { request, _ in
            let query = request.uri.queryParameters
            let limit = min(1000, max(1, query.get("limit").flatMap { Int($0) } ?? 100))
            let list = try await store.accounts(limit: limit, after: query.get("after"))
            return Relay.json([
                "object": "list", "data": .array(list.map { .object(BillingJSON.account($0)) }),
                "has_more": .bool(list.count == limit),
            ])
        }
        admin.get("accounts/{id}") { _, context in
            Relay.json(BillingJSON.account(try await accounts.account(id: try context.parameters.require("id"))))
        }
        admin.patch("accounts/{id}") { request, context in
            let body = try await AdminBody.read(request)
            var patch = AccountPatch(
                name: try body.string("name"), multiplierPPM: try body.multiplier("price_multiplier"),
                status: try body.status("status"))
            if body.has("models") { patch.models = .some(try body.stringList("models")) }
            if body.has("limits") { patch.limits = .some(try body.limits("limits")) }
            let account = try await accounts.updateAccount(id: try context.parameters.require("id"), patch)
            return Relay.json(BillingJSON.account(account))
        }
        admin.post("accounts/{id}/keys") { request, context in
            let body = try await AdminBody.read(request)
            let created = try await accounts.createKey(
                accountID: try context.parameters.require("id"), label: try body.string("label") ?? "",
                models: try body.stringList("models"), expiresAt: try body.int("expires_at"), limits: try body.limits("limits"))
            return Relay.json(BillingJSON.key(created.key, secret: created.secret), status: .created)
        }
        admin.get("accounts/{id}/keys") { _, context in
            let id = try context.parameters.require("id")
            _ = try await accounts.account(id: id)
            let keys = try await store.keys(accountID: id)
            return Relay.json(["object": "list", "data": .array(keys.map { .object(BillingJSON.key($0)) })])
        }
        admin.patch("keys/{id}") { request, context in
            let body = try await AdminBody.read(request)
            try body.allowOnly(["label", "models", "expires_at", "limits"])
            var patch = KeyPatch(label: try body.string("label"))
            if body.has("models") { patch.models = .some(try body.stringList("models")) }
            if body.has("expires_at") { patch.expiresAt = .some(try body.int("expires_at")) }
            if body.has("limits") { patch.limits = .some(try body.limits("limits")) }
            let key = try await accounts.updateKey(id: try context.parameters.require("id"), patch)
            return Relay.json(BillingJSON.key(key))
        }
        admin.delete("keys/{id}") { _, context in
            let id = try context.parameters.require("id")
            try await accounts.revokeKey(id: id)
            return Relay.json(["object": "api_key", "id": .string(id), "revoked": true])
        }
        admin.post("accounts/{id}/credits") { request, context in
            let body = try await AdminBody.read(request)
            guard let amount = try body.money("amount") else { throw GatewayError.missingParameter("amount") }
            let result = try await accounts.addCredit(
                accountID: try context.parameters.require("id"), amount: amount, reason: try body.string("reason") ?? "",
                idempotencyKey: try body.string("idempotency_key"))
            var object = BillingJSON.account(result.account)
            object["credit_applied"] = .bool(result.applied)
            return Relay.json(object)
        }
        if let queries = store as? any LedgerQueries {
            admin.get("usage/summary") { request, _ in
                try await UsageReads(queries: queries).summary(request, accountID: request.uri.queryParameters.get("account"))
            }
            admin.get("usage/{id}") { _, context in
                try await UsageReads(queries: queries).row(try context.parameters.require("id"), accountID: nil)
            }
        }
        if let models {
            admin.get("models") { _, _ in
                Relay.json([
                    "object": "list",
                    "data": .array(
                        models.catalog.models.map { model in
                            var object = models.object(for: model)
                            object["deployments"] = .array(
                                model.deployments.map { .object(["provider": .string($0.provider), "model": .string($0.model)]) })
                            object["fallbacks"] = .array(model.fallbacks.map(JSONValue.string))
                            return .object(object)
                        }),
                ])
            }
        }
        admin.get("usage") { request, _ in
            try await UsageListing(store: store).respond(request, accountID: request.uri.queryParameters.get("account"))
        }
    }
}

/// Only requests bearing the admin key pass; its digest is compared in constant time.
struct AdminGate: RouterMiddleware {
    typealias Context = GatewayRequestContext
    let digest: [UInt8]?

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws
        -> Response
    {
        guard let digest, Secrets.matches(request.bearerToken, digest: digest) else {
            throw GatewayError.invalidAPIKey("The admin API needs the admin key as 'Authorization: Bearer …'.")
        }
        return try await next(request, context)
    }
}

/// A page of ledger rows as JSON (`{"object":"list","data":[…],"next_cursor":…}`) or, with
/// `?format=csv`, as CSV.
struct UsageListing: Sendable {
    let store: any BillingStore

    func respond(_ request: Request, accountID: String?) async throws -> Response {
        let query = try UsageQuery(request)
        let page: LedgerPage
        do {
            page = try await store.ledger(
                accountID: accountID, from: query.from, to: query.to, limit: query.limit, cursor: query.cursor)
        } catch BillingStoreError.invalidCursor {
            throw GatewayError.invalidValue("cursor", "Invalid 'cursor': use the next_cursor of a previous page.")
        }
        if request.uri.queryParameters.get("format") == "csv" {
            let text = AdminJSON.usageCSV(page.rows)
            var headers: HTTPFields = [.contentType: "text/csv; charset=utf-8"]
            if let next = page.nextCursor, let name = HTTPField.Name("x-next-cursor") { headers[name] = next }
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: text)))
        }
        return Relay.json([
            "object": "list", "data": .array(page.rows.map { .object(BillingJSON.row($0)) }),
            "next_cursor": page.nextCursor.map(JSONValue.string) ?? .null,
        ])
    }
}
