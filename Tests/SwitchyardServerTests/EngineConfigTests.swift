import SwitchyardCore
import Testing

@testable import SwitchyardServer

/// `kind: managed` and `engines:` in the YAML: read once, every mistake naming its key.
@Suite struct EngineConfigTests {
    static func yaml(_ provider: String, top: String = "") -> String {
        """
        providers:
          eng:
        \(provider)
        models:
          m: {deployments: [{provider: eng}]}
        \(top)
        """
    }

    func error(_ yaml: String) -> ConfigError? {
        do {
            _ = try ConfigLoader.parse(yaml: yaml, environment: ["THREADS": "2"])
            return nil
        } catch {
            return error
        }
    }

    @Test func everyKeyIsReadAndPortIsLeftForTheGateway() throws {
        let config = try ConfigLoader.parse(
            yaml: Self.yaml(
                """
                    kind: managed
                    command: [python3, -m, llama_cpp.server, --port, "${PORT}", --threads, "${THREADS}"]
                    env: {OMP_NUM_THREADS: "1"}
                    health_path: /openapi.json
                    start_timeout: 300s
                    idle_timeout: 10m
                    stop_timeout: 5s
                    group: gpu0
                    max_queue: 64
                    abandon_unused_load: false
                    stream: always
                    timeouts: {first_byte: 300s}
                """, top: "engines: {max_running: 2}"),
            environment: ["THREADS": "2"])
        let provider = try #require(config.providers.first)
        let engine = try #require(provider.managed)
        #expect(provider.kind == .managed && provider.stream == .always && provider.maxQueue == 64)
        #expect(provider.timeouts.firstByte == .seconds(300))
        #expect(engine.command == ["python3", "-m", "llama_cpp.server", "--port", "${PORT}", "--threads", "2"])
        #expect(engine.arguments(port: 4321)[4] == "4321")
        #expect(engine.environment == ["OMP_NUM_THREADS": "1"] && engine.healthPath == "/openapi.json")
        #expect(engine.startTimeout == .seconds(300) && engine.idleTimeout == .seconds(600))
        #expect(engine.stopTimeout == .seconds(5) && engine.group == "gpu0" && !engine.abandonUnusedLoad)
        #expect(config.engines.maxRunning == 2)
    }

    @Test func defaults() throws {
        let config = try ConfigLoader.parse(
            yaml: Self.yaml("    kind: managed\n    command: [engine, --port, \"${PORT}\"]"), environment: [:])
        let engine = try #require(config.providers.first?.managed)
        #expect(engine.healthPath == "/v1/models" && engine.startTimeout == .seconds(300))
        #expect(engine.idleTimeout == .seconds(600) && engine.stopTimeout == .seconds(10) && engine.abandonUnusedLoad)
        #expect(config.engines.maxRunning == nil)
    }

    @Test(arguments: [
        ("    kind: managed", "providers.eng", "'command' is required"),
        ("    kind: managed\n    command: [engine, --port, \"8000\"]", "providers.eng.command", "${PORT}"),
        ("    kind: managed\n    command: [e, \"${PORT}\"]\n    base_url: http://x/v1", "providers.eng.base_url", "not used"),
        ("    kind: managed\n    command: [e, \"${PORT}\"]\n    health_path: health", "providers.eng.health_path", "path"),
        ("    kind: managed\n    command: [e, \"${PORT}\"]\n    start_timeout: 0s", "providers.eng.start_timeout", "longer"),
        ("    kind: managed\n    command: [e, \"${PORT}\"]\n    max_queue: 0", "providers.eng.max_queue", "integer"),
        ("    kind: managed\n    command: [e, \"${PORT}\"]\n    abandon_unused_load: maybe", "providers.eng.abandon_unused_load", "true or false"),
        ("    kind: openai\n    base_url: http://x/v1\n    group: gpu0", "providers.eng.group", "only used by kind managed"),
    ])
    func mistakesNameTheirKey(provider: String, key: String, message: String) {
        let error = error(Self.yaml(provider))
        #expect(error?.key == key)
        #expect(error?.message.contains(message) == true, "\(String(describing: error))")
    }

    @Test func maxRunningIsValidated() {
        let error = error(Self.yaml("    kind: managed\n    command: [e, \"${PORT}\"]", top: "engines: {max_running: 0}"))
        #expect(error?.key == "engines.max_running")
    }

    @Test func theTokenizerIsReadAndValidated() throws {
        let config = try ConfigLoader.parse(
            yaml: Self.yaml("    kind: managed\n    command: [e, \"${PORT}\"]\n    tokenizer: {kind: llama-cpp-python}"),
            environment: [:])
        let tokenizer = try #require(config.providers.first?.tokenizer)
        #expect(tokenizer.kind == .llamaCppPython && tokenizer.chatTemplate == .chatml && tokenizer.path == "/extras/tokenize/count")
        let server = try ConfigLoader.parse(
            yaml: Self.yaml("    kind: openai\n    base_url: http://x/v1\n    tokenizer: {kind: llama-server, chat_template: none}"),
            environment: [:])
        #expect(server.providers.first?.tokenizer == .init(kind: .llamaServer, chatTemplate: nil))
        #expect(error(Self.yaml("    kind: managed\n    command: [e, \"${PORT}\"]\n    tokenizer: {kind: tiktoken}"))?.key
            == "providers.eng.tokenizer.kind")
        #expect(error(Self.yaml("    kind: test\n    tokenizer: {kind: llama-server}"))?.key == "providers.eng.tokenizer")
    }
}
