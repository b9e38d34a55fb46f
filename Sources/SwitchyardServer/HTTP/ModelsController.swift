import Hummingbird
import NIOCore
import SwitchyardCore

/// `GET /v1/models` and `GET /v1/models/{id}` in OpenAI's shape, with the catalog's own metadata
/// (context window, description, aliases, endpoints) under additional keys.
struct ModelsController: Sendable {
    let catalog: Catalog
    /// Models have no creation date of their own; the time the catalog was loaded stands in.
    let created: Int

    func addRoutes(to group: RouterGroup<GatewayRequestContext>) {
        group.get("models") { _, _ in list() }
        group.get("models/{id}") { _, context in try one(try context.parameters.require("id")) }
    }

    func list() -> Response {
        Relay.json(["object": "list", "data": .array(catalog.models.map { .object(object(for: $0)) })])
    }

    func one(_ id: String) throws -> Response {
        guard let model = catalog.model(named: id) else { throw GatewayError.modelNotFound(id) }
        return Relay.json(object(for: model))
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
        return object
    }
}
