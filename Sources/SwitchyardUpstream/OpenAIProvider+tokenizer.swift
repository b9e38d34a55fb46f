import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import SwitchyardCore

extension OpenAIProvider {
    public func countTokens(_ text: String, logger: Logger) async throws -> Int {
        try await countTokens(text, logger: logger, baseURL: config.baseURL)
    }

    /// Asks the engine's tokenizer endpoint (`tokenizer:`) how many tokens `text` is, at the origin
    /// of `baseURL` (the endpoints are not under `/v1`). Special tokens in `text` (a chat template's
    /// markers) are parsed as the engine parses them in a prompt.
    func countTokens(_ text: String, logger: Logger, baseURL: String) async throws -> Int {
        guard let tokenizer = config.tokenizer else { throw UpstreamError.invalidResponse("no tokenizer configured") }
        guard let components = URLComponents(string: baseURL), let scheme = components.scheme, let host = components.host
        else { throw UpstreamError.invalidResponse("bad base URL") }
        let origin = "\(scheme)://\(host)" + (components.port.map { ":\($0)" } ?? "")
        var request = HTTPClientRequest(url: origin + tokenizer.path)
        request.method = .POST
        request.headers = fixedHeaders
        request.headers.add(name: "content-type", value: "application/json")
        let body: JSONObject = tokenizer.kind == .llamaCppPython
            ? ["input": .string(text)]
            : ["content": .string(text), "add_special": true, "parse_special": true]
        request.body = .bytes(body.serialized())
        let response = try await client.execute(request, timeout: .init(config.timeouts.firstByte), logger: logger.heldAtDebug)
        let bytes = try await response.body.collect(upTo: 16 * 1024 * 1024)
        guard response.status.code == 200, case .object(let answer)? = try? JSONValue.parse(Array(bytes.readableBytesView))
        else { throw UpstreamError.invalidResponse("the tokenizer answered HTTP \(response.status.code)") }
        if let count = answer["count"]?.intValue { return count }
        if let tokens = answer["tokens"]?.arrayValue { return tokens.count }
        throw UpstreamError.invalidResponse("the tokenizer's answer has no count")
    }
}
