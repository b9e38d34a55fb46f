import AsyncHTTPClient
import Logging
import NIOHTTP1
import SwitchyardCore

/// An upstream that speaks Anthropic's Messages API (`kind: anthropic`). Messages requests
/// (`/v1/messages` callers) are passed through as they came, with the caller's `anthropic-version`
/// and `anthropic-beta`; chat completions (and Responses, which reach providers as chat completions)
/// are translated to Messages, and the answer or stream back to chat completions
/// (`AnthropicUpstream`), so the rest of the gateway sees an OpenAI-compatible upstream.
public struct AnthropicProvider: Provider {
    public var config: ProviderConfig { http.config }
    let http: OpenAIProvider

    init(config: ProviderConfig, client: HTTPClient) {
        var headers = HTTPHeaders()
        if let key = config.apiKey { headers.add(name: "x-api-key", value: key) }
        headers.add(name: "anthropic-version", value: config.anthropic.version)
        http = OpenAIProvider(
            config: config, client: client, authentication: headers, isLastEvent: AnthropicUpstream.isTerminal)
    }

    public func send(_ request: UpstreamRequest, logger: Logger) async throws -> UpstreamResponse {
        if request.endpoint == .messages || request.endpoint == .messagesCountTokens {
            return try await http.send(request, logger: logger)
        }
        let body = AnthropicUpstream.messagesBody(
            fromChat: request.body, defaultMaxTokens: config.anthropic.defaultMaxTokens)
        let response = try await http.send(
            UpstreamRequest(endpoint: .messages, body: body, stream: request.stream), logger: logger)
        let created = Int(SystemClock().unixSeconds)
        switch response.body {
        case .complete(let bytes):
            guard (200..<300).contains(response.status), case .object(let message)? = try? JSONValue.parse(bytes) else {
                return response
            }
            let chat = AnthropicUpstream.chatCompletion(fromMessage: message, created: created)
            return UpstreamResponse(status: response.status, headers: response.headers, body: .complete(chat.serialized()))
        case .events(let events):
            return UpstreamResponse(
                status: response.status, headers: response.headers, body: .events(Self.chatEvents(from: events, created: created)))
        }
    }

    /// The Messages stream's events as chat completion chunks, decoded in a task of its own;
    /// cancelling either side cancels the other.
    static func chatEvents(from events: UpstreamEvents, created: Int) -> UpstreamEvents {
        let chat = UpstreamEvents()
        chat.onCancel { events.cancel() }
        Task {
            var decoder = AnthropicStreamDecoder(created: created)
            do {
                while let payload = try await events.next() {
                    guard case .object(let event)? = try? JSONValue.parse(payload) else {
                        throw UpstreamError.invalidResponse("a stream event is not a JSON object")
                    }
                    for chunk in decoder.decode(event) { chat.yield(chunk.serialized()) }
                }
                chat.finish()
            } catch {
                chat.finish(throwing: error)
            }
        }
        return chat
    }
}
