import Hummingbird
import NIOCore
import SwitchyardCore

/// `GET /v1/models` and `GET /v1/models/{id}` in OpenAI's shape, with the catalog's own metadata
/// (context window, description, aliases, endpoints) under additional keys. As OpenAI does, it needs
/// a key (401 without one) and lists only the models that key and its account may use; with
/// `public_models: true` anyone may read the whole catalog (a valid key still narrows it to its own).
struct ModelsController: Sendable {
    let catalog: Catalog
    let authenticator: Authenticator
    let publicCatalog: Bool
    /// Models have no creation date of their own; the time the catalog was loaded stands in.
    let created: Int

    func addRoutes(to group: RouterGroup<GatewayRequestContext>) {
        group.get("models") { request, _ in try await list(keys: [request.bearerToken]) }
        group.get("models/{id}") { request, context in
            try await one(try context.parameters.require("id"), keys: [request.bearerToken])
        }
    }

    /// The models `keys` (the first valid one) may use.
    func list(keys: [String?]) async throws -> Response {
        let visible = try await visibleModels(keys: keys)
        return Relay.json(["object": "list", "data": .array(visible.map { .object(object(for: $0)) })])
    }

    func one(_ id: String, keys: [String?]) async throws -> Response {
        // A model the caller may not use does not exist for it.
        guard let model = catalog.model(named: id), try await visibleModels(keys: keys).contains(model) else {
            throw GatewayError.modelNotFound(id)
        }
        return Relay.json(object(for: model))
    }

    private func visibleModels(keys: [String?]) async throws -> [ModelConfig] {
        let caller: Caller?
        do {
            caller = try await authenticator.authenticate(anyOf: keys)
        } catch let error as GatewayError where publicCatalog && error.httpStatus == 401 {
            caller = nil
        }
        guard let caller else { return catalog.models }
        return catalog.models.filter(caller.mayUse)
    }

    func object(for model: ModelConfig) -> JSONObject {
        var object: JSONObject = [
            "id": .string(model.name), "object": "model", "created": .int(created), "owned_by": .string(model.ownedBy),
        ]
        if let description = model.description { object["description"] = .string(description) }
        if let context = model.context { object["context_length"] = .int(context) }
        if let output = model.maxOutputTokens { object["max_output_tokens"] = .int(output) }
        object["aliases"] = .array(model.aliases.map(JSONValue.string))
        object["endpoints"] = .array(
            Endpoint.all.filter(model.endpoints.contains).map { .string("/v1" + $0.path) })
        object["pricing"] = model.price.json
        if case .perSecond = model.price { object["pricing"]?.setMaxSeconds(model.maxSeconds) }
        return object
    }
}
