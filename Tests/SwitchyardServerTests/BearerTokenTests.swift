import HTTPTypes
import Hummingbird
import Testing

@testable import SwitchyardServer

@Suite struct BearerTokenTests {
    func token(_ value: String?) -> String? {
        var head = HTTPRequest(method: .post, scheme: "http", authority: "127.0.0.1", path: "/v1/chat/completions")
        if let value { head.headerFields[.authorization] = value }
        return Request(head: head, body: .init(buffer: .init())).bearerToken
    }

    @Test func theSchemeInAnyCaseAndTheTokenWithoutTheSpacesAroundIt() {
        #expect(token("Bearer sk-sy-abc") == "sk-sy-abc")
        #expect(token("bearer sk-sy-abc") == "sk-sy-abc")
        #expect(token("BEARER \t sk-sy-abc \t") == "sk-sy-abc")
        #expect(token("Bearer ") == nil)  // a field value loses its trailing space: no token
        #expect(token("Bearer") == nil)
        #expect(token("Bearerx sk") == nil)
        #expect(token("Basic dXNlcjpwYXNz") == nil)
        #expect(token("Bearer sk-é") == "sk-é")
        #expect(token(nil) == nil)
    }
}
