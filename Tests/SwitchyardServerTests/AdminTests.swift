import Foundation
import SwitchyardCore
import Testing

@Suite(.timeLimit(.minutes(1))) struct AdminTests {
    @Test func keysAuthenticateAndEveryRefusalHasItsStatus() async throws {
        try await GatewayHarness.run { gateway in
            func status(_ key: String?, model: String = "m") async throws -> (Int, String?) {
                let reply = try await gateway.post("/v1/chat/completions", chat(model), auth: key)
                return (reply.status, reply.json["error"]?["code"]?.stringValue)
            }
            #expect(try await status(nil) == (401, "invalid_api_key"))
            #expect(try await status("sk-sy-wrong") == (401, "invalid_api_key"))
            #expect(try await status("").0 == 200)

            let admin = gateway.adminKey
            let account = gateway.accountID
            let limited = try await gateway.post(
                "/admin/v1/accounts/\(account)/keys", #"{"label":"only demo","models":["demo"]}"#, auth: admin)
            #expect(limited.status == 201)
            let limitedKey = try #require(limited.json["key"]?.stringValue)
            #expect(limitedKey.hasPrefix("sk-sy-") && limitedKey.count == 49)
            #expect(try await status(limitedKey, model: "demo").0 == 200)
            #expect(try await status(limitedKey, model: "m") == (403, "model_not_allowed"))

            let expired = try await gateway.post(
                "/admin/v1/accounts/\(account)/keys", #"{"label":"old","expires_at":1000}"#, auth: admin)
            #expect(try await status(try #require(expired.json["key"]?.stringValue)) == (401, "invalid_api_key"))

            let revoke = try await gateway.post(
                "/admin/v1/keys/\(try #require(limited.json["id"]?.stringValue))", "", auth: admin, method: .DELETE)
            #expect(revoke.status == 200)
            #expect(try await status(limitedKey, model: "demo") == (401, "invalid_api_key"))

            _ = try await gateway.post("/admin/v1/accounts/\(account)", #"{"status":"suspended"}"#, auth: admin, method: .PATCH)
            #expect(try await status("") == (403, "account_suspended"))
            _ = try await gateway.post("/admin/v1/accounts/\(account)", #"{"status":"active"}"#, auth: admin, method: .PATCH)
            #expect(try await status("").0 == 200)
        }
    }

    @Test func theAdminAPIManagesAccountsKeysAndCredits() async throws {
        try await GatewayHarness.run { gateway in
            let admin = gateway.adminKey
            #expect(try await gateway.get("/admin/v1/accounts", auth: nil).status == 401)
            #expect(try await gateway.get("/admin/v1/accounts").status == 401)  // a tenant key is not the admin key

            let created = try await gateway.post(
                "/admin/v1/accounts", #"{"id":"acme-\#(UUID().uuidString.prefix(6))","name":"acme","balance":"10.00","price_multiplier":"0.8"}"#,
                auth: admin)
            #expect(created.status == 201)
            let id = try #require(created.json["id"]?.stringValue)
            #expect(created.json["balance"] == "10.00")
            #expect(created.json["price_multiplier"] == "0.8")
            let again = try await gateway.post("/admin/v1/accounts", #"{"id":"\#(id)","name":"twice"}"#, auth: admin)
            #expect(again.status == 409)
            #expect(try await gateway.post("/admin/v1/accounts", #"{"balance":"1"}"#, auth: admin).status == 400)
            #expect(try await gateway.post("/admin/v1/accounts", #"{"name":"x","balance":"1.0000001"}"#, auth: admin).status == 400)

            let credit = #"{"amount":"5.00","reason":"top-up","idempotency_key":"pay-1"}"#
            let first = try await gateway.post("/admin/v1/accounts/\(id)/credits", credit, auth: admin)
            #expect(first.json["balance"] == "15.00")
            #expect(first.json["credit_applied"] == true)
            let repeated = try await gateway.post("/admin/v1/accounts/\(id)/credits", credit, auth: admin)
            #expect(repeated.json["balance"] == "15.00")
            #expect(repeated.json["credit_applied"] == false)
            let adjust = try await gateway.post("/admin/v1/accounts/\(id)/credits", #"{"amount":"-0.25"}"#, auth: admin)
            #expect(adjust.json["balance"] == "14.75")
            #expect(try await gateway.post("/admin/v1/accounts/nope/credits", #"{"amount":"1"}"#, auth: admin).status == 404)

            let key = try await gateway.post("/admin/v1/accounts/\(id)/keys", #"{"label":"prod"}"#, auth: admin)
            let keys = try await gateway.get("/admin/v1/accounts/\(id)/keys", auth: admin)
            #expect(keys.json["data"]?.arrayValue?.count == 1)
            #expect(keys.json["data"]?.arrayValue?.first?["key"] == nil)  // the secret is shown once only
            #expect(keys.text.contains(try #require(key.json["key"]?.stringValue)) == false)

            let fetched = try await gateway.get("/admin/v1/accounts/\(id)", auth: admin)
            #expect(fetched.json["name"] == "acme")
            let list = try await gateway.get("/admin/v1/accounts?limit=1000", auth: admin)
            #expect(list.json["data"]?.arrayValue?.contains { $0["id"]?.stringValue == id } == true)
            #expect(try await gateway.get("/admin/v1/accounts/nope", auth: admin).status == 404)
        }
    }

    @Test func limitsAreSetPatchedClearedAndValidatedThroughTheAdminAPI() async throws {
        try await GatewayHarness.run { gateway in
            let admin = gateway.adminKey
            func limits(_ reply: GatewayHarness.Reply) -> [Int?]? {
                guard let object = reply.json["limits"], !object.isNull else { return nil }
                return ["requests_per_minute", "tokens_per_minute", "concurrent"].map { object[$0]?.intValue }
            }
            let id = "lim-\(UUID().uuidString.prefix(6))"
            let created = try await gateway.post(
                "/admin/v1/accounts",
                #"{"id":"\#(id)","name":"limited","limits":{"requests_per_minute":600,"tokens_per_minute":200000,"concurrent":10}}"#,
                auth: admin)
            #expect(created.status == 201)
            #expect(limits(created) == [600, 200_000, 10])
            #expect(limits(try await gateway.get("/admin/v1/accounts/\(id)", auth: admin)) == [600, 200_000, 10])

            // PATCH replaces the limits as a whole; leaving `limits` out keeps them; null clears them.
            let patched = try await gateway.post("/admin/v1/accounts/\(id)", #"{"limits":{"concurrent":3}}"#, auth: admin, method: .PATCH)
            #expect(patched.status == 200)
            #expect(limits(patched) == [nil, nil, 3])
            let renamed = try await gateway.post("/admin/v1/accounts/\(id)", #"{"name":"renamed"}"#, auth: admin, method: .PATCH)
            #expect(limits(renamed) == [nil, nil, 3])
            let cleared = try await gateway.post("/admin/v1/accounts/\(id)", #"{"limits":null}"#, auth: admin, method: .PATCH)
            #expect(cleared.json["limits"] == .null)
            #expect(try await gateway.get("/admin/v1/accounts/\(id)", auth: admin).json["limits"] == .null)
            let empty = try await gateway.post("/admin/v1/accounts/\(id)", #"{"limits":{}}"#, auth: admin, method: .PATCH)
            #expect(empty.json["limits"] == .null)

            // Keys take limits when they are created.
            let key = try await gateway.post(
                "/admin/v1/accounts/\(id)/keys", #"{"label":"k","limits":{"tokens_per_minute":5000,"concurrent":null}}"#, auth: admin)
            #expect(key.status == 201)
            #expect(limits(key) == [nil, 5000, nil])
            let keys = try await gateway.get("/admin/v1/accounts/\(id)/keys", auth: admin)
            #expect(keys.json["data"]?.arrayValue?.first?["limits"]?["tokens_per_minute"]?.intValue == 5000)

            // A bad value is a 400 naming the field, and changes nothing.
            let bad: [(String, String)] = [
                (#"{"requests_per_minute":0}"#, "limits.requests_per_minute"),
                (#"{"tokens_per_minute":-5}"#, "limits.tokens_per_minute"),
                (#"{"concurrent":1.5}"#, "limits.concurrent"),
                (#"{"concurrent":"10"}"#, "limits.concurrent"),
                (#"{"concurrent":true}"#, "limits.concurrent"),
                (#"{"requests_per_minute":100000001}"#, "limits.requests_per_minute"),
                (#"{"rpm":10}"#, "limits.rpm"),
                (#"[600]"#, "limits"),
                (#"600"#, "limits"),
            ]
            for (limitsJSON, param) in bad {
                let patch = try await gateway.post(
                    "/admin/v1/accounts/\(id)", #"{"name":"changed","limits":\#(limitsJSON)}"#, auth: admin, method: .PATCH)
                #expect(patch.status == 400, "\(limitsJSON)")
                #expect(patch.json["error"]?["param"]?.stringValue == param, "\(limitsJSON)")
                #expect(patch.json["error"]?["type"] == "invalid_request_error")
                let newAccount = try await gateway.post(
                    "/admin/v1/accounts", #"{"id":"\#(id)-bad","name":"bad","limits":\#(limitsJSON)}"#, auth: admin)
                #expect(newAccount.status == 400)
                #expect(newAccount.json["error"]?["param"]?.stringValue == param)
                let newKey = try await gateway.post("/admin/v1/accounts/\(id)/keys", #"{"limits":\#(limitsJSON)}"#, auth: admin)
                #expect(newKey.status == 400)
                #expect(newKey.json["error"]?["param"]?.stringValue == param)
            }
            let unchanged = try await gateway.get("/admin/v1/accounts/\(id)", auth: admin)
            #expect(unchanged.json["name"] == "renamed")
            #expect(unchanged.json["limits"] == .null)
            #expect(try await gateway.get("/admin/v1/accounts/\(id)-bad", auth: admin).status == 404)
            #expect(try await gateway.get("/admin/v1/accounts/\(id)/keys", auth: admin).json["data"]?.arrayValue?.count == 1)
        }
    }

    @Test func keyHoldersReadTheirOwnAccountAndUsage() async throws {
        try await GatewayHarness.run { gateway in
            for _ in 0..<3 { _ = try await gateway.post("/v1/chat/completions", chat("m-request", extra: #""user":"bob""#)) }
            let account = try await gateway.get("/v1/account")
            #expect(account.json["id"]?.stringValue == gateway.accountID)
            #expect(account.json["balance"] == "999.97")
            #expect(account.json["key"]?["label"] == "test")

            let seed = try await gateway.get("/api_user/info?openid=\(gateway.key)&type=json", auth: nil)
            #expect(seed.json["balance"] == "999.97")
            #expect(try await gateway.get("/api_user/info?openid=sk-sy-nope&type=json", auth: nil).status == 401)

            let page = try await gateway.get("/v1/usage?limit=2")
            #expect(page.json["data"]?.arrayValue?.count == 2)
            let cursor = try #require(page.json["next_cursor"]?.stringValue)
            let rest = try await gateway.get("/v1/usage?limit=2&cursor=\(cursor)")
            #expect(rest.json["data"]?.arrayValue?.count == 1)
            #expect(rest.json["next_cursor"] == .null)
            let row = try #require(page.json["data"]?.arrayValue?.first)
            #expect(row["user"] == "bob")
            #expect(row["cost"] == "0.01")
            #expect(row["usage_source"] == "reported")

            let csv = try await gateway.get("/v1/usage?format=csv")
            #expect(csv.header("content-type")?.hasPrefix("text/csv") == true)
            #expect(csv.text.split(separator: "\n").count == 4)
            #expect(csv.text.hasPrefix("id,started_at"))

            let future = try await gateway.get("/v1/usage?from=2999-01-01")
            #expect(future.json["data"]?.arrayValue?.isEmpty == true)
            #expect(try await gateway.get("/v1/usage?cursor=garbage").status == 400)
            #expect(try await gateway.get("/v1/usage?from=yesterday").status == 400)
        }
    }
}
