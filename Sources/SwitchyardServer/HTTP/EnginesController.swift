import Hummingbird
import SwitchyardCore
import SwitchyardUpstream

/// `/admin/v1/engines`: the managed engines, and starting or stopping one by hand (admin key).
struct EnginesController: Sendable {
    let engines: EngineSupervisor
    /// The public models each provider serves, for the listing.
    let modelsByProvider: [String: [String]]
    let gate: AdminGate

    init(engines: EngineSupervisor, models: [ModelConfig], gate: AdminGate) {
        var byProvider: [String: [String]] = [:]
        for model in models {
            for provider in Set(model.deployments.map(\.provider)) { byProvider[provider, default: []].append(model.name) }
        }
        self.engines = engines
        self.modelsByProvider = byProvider
        self.gate = gate
    }

    func addRoutes(to router: Router<GatewayRequestContext>) {
        let admin = router.group("admin/v1/engines").add(middleware: gate)
        admin.get { _, _ in
            Relay.json(["object": "list", "data": .array(engines.snapshots.map { .object(json($0)) })])
        }
        admin.post("{name}/start") { _, context in
            try respond(context, engines.start)
        }
        admin.post("{name}/stop") { _, context in
            try respond(context, engines.stop)
        }
    }

    private func respond(_ context: GatewayRequestContext, _ action: (String) -> Bool) throws -> Response {
        let name = try context.parameters.require("name")
        guard action(name) else { throw GatewayError.notFound("/admin/v1/engines/\(name)") }
        guard let snapshot = engines.snapshots.first(where: { $0.name == name }) else {
            throw GatewayError.notFound("/admin/v1/engines/\(name)")
        }
        return Relay.json(json(snapshot), status: .accepted)
    }

    func json(_ engine: EngineSnapshot) -> JSONObject {
        func number(_ value: Int?) -> JSONValue { value.map { .number(String($0)) } ?? .null }
        return JSONObject([
            "object": "engine",
            "name": .string(engine.name),
            "state": .string(engine.state.rawValue),
            "group": engine.group.map(JSONValue.string) ?? .null,
            "pid": number(engine.pid.map(Int.init)),
            "port": number(engine.port),
            "models": .array((modelsByProvider[engine.name] ?? []).sorted().map(JSONValue.string)),
            "last_used_at": number(engine.lastUsedUnixMillis.map { Int($0 / 1000) }),
            "loads": number(engine.loads),
            "last_load_ms": number(engine.lastLoad.map { Int($0.millis) }),
            "crashes": number(engine.crashes),
            "requests_in_flight": number(engine.inFlight),
            "requests_waiting": number(engine.waiting),
        ])
    }
}
