import SwitchyardCore

/// Exact counts for engines whose streams report no usage (llama.cpp): when the provider names its
/// tokenizer (`tokenizer:`), the relayed completion and the prompt as the engine renders it (its chat
/// template) are counted by the engine itself before the request settles, and the ledger says
/// `usage_source: engine`. Should either count fail, the estimate stands.
extension Exchange {
    var countsWithEngine: Bool { provider.config.tokenizer != nil && endpoint.prompt == .messages }

    func countWithEngine(completion: String) async {
        guard countsWithEngine, !ticket.hasReportedUsage,
            let template = provider.config.tokenizer?.chatTemplate,
            let prompt = template.render(inference.body["messages"])
        else { return }
        let provider = self.provider
        let logger = self.logger
        do {
            async let promptTokens = provider.countTokens(prompt, logger: logger)
            let completionTokens = completion.isEmpty ? 0 : try await provider.countTokens(completion, logger: logger)
            ticket.recordCounted(Usage(promptTokens: try await promptTokens, completionTokens: completionTokens))
        } catch {
            logger.debug("the engine's tokenizer did not answer; the estimate stands", metadata: ["error": "\(error)"])
        }
    }

    /// The generated text of a whole answer (every choice's message content or text).
    static func completionText(of response: JSONObject) -> String {
        (response["choices"]?.arrayValue ?? []).map { choice in
            choice["text"]?.stringValue ?? choice["message"]?["content"]?.stringValue ?? ""
        }.joined()
    }
}
