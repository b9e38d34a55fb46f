import Logging
import SwitchyardCore

/// A `managed` provider: an OpenAI-compatible engine process the gateway starts on demand. `prepare`
/// waits for the engine (starting it when stopped); `send` goes over HTTP to its current port and
/// counts the request in flight until its response is over, so that idle stops and group swaps
/// never cut it.
struct ManagedProvider: Provider {
    let config: ProviderConfig
    let http: OpenAIProvider
    let supervisor: EngineSupervisor

    var prepares: Bool { true }
    /// A streaming client of an engine that is not serving gets `: loading` comments while it waits.
    var isReady: Bool { supervisor.isReady(config.name) }

    func prepare(logger: Logger) async throws -> Duration {
        try await supervisor.prepare(config.name)
    }

    func countTokens(_ text: String, logger: Logger) async throws -> Int {
        guard let port = supervisor.readyPort(config.name) else { throw UpstreamError.connectFailed }
        return try await http.countTokens(text, logger: logger, baseURL: "http://127.0.0.1:\(port)/v1")
    }

    func send(_ request: UpstreamRequest, logger: Logger) async throws -> UpstreamResponse {
        let name = config.name
        let supervisor = self.supervisor
        let port = try await supervisor.begin(name)
        // In flight until the exchange is over: the whole answer read, or the stream finished,
        // failed, or cancelled by the relay (which closes the connection).
        return try await http.send(
            request, logger: logger, baseURL: "http://127.0.0.1:\(port)/v1", onEnd: { supervisor.end(name) })
    }
}
