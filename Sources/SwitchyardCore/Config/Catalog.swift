/// Looks public model names and aliases up; built once from the validated config.
public struct Catalog: Sendable {
    public let models: [ModelConfig]
    private let index: [String: Int]

    public init(models: [ModelConfig]) {
        self.models = models
        var index: [String: Int] = [:]
        for (position, model) in models.enumerated() {
            index[model.name] = position
            for alias in model.aliases where index[alias] == nil {
                index[alias] = position
            }
        }
        self.index = index
    }

    /// The model a name or alias refers to.
    public func model(named name: String) -> ModelConfig? {
        index[name].map { models[$0] }
    }
}
