import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle
import SwitchyardCore

/// The seed's drawing tasks, as a generic relay of asynchronous jobs in the midjourney-proxy
/// convention (`POST /mj/submit/ACTION` → a task id; `GET /mj/task/ID/fetch`;
/// `POST /mj/task/list-by-condition`). A submission is held at its action's price
/// (`price: {action: {…}}`); the task's ledger row stays running while the upstream works; when the
/// task ends — seen by whoever looks first: the caller polling, the watcher, another replica — the
/// hold is captured (`SUCCESS`) or released (`FAILURE`, or no end within `TaskRelay.timeout`),
/// exactly once. A task exists only for its account; a poll answers from the upstream.
struct TaskRelay: Sendable {
    let catalog: Catalog
    let router: DeploymentRouter
    let authenticator: Authenticator
    let billing: Billing
    let tasks: any TaskStore
    let limits: Limits
    let maxBodyBytes: Int
    let logger: Logger

    /// A task not ended after this long is given up on and released.
    static let timeout: Duration = .seconds(3600)
    static let actions = ["imagine", "change", "simple-change", "action", "blend", "describe", "modal", "shorten"]

    var clock: any GatewayClock { billing.clock }

    func addRoutes(to router: Router<GatewayRequestContext>) {
        for action in Self.actions {
            router.post(RouterPath("mj/submit/\(action)")) { request, context in
                try await submit(action, request: request, context: context)
            }
        }
        router.get("mj/task/{id}/fetch") { request, context in
            let caller = try await caller(request)
            let id = try context.parameters.require("id")
            guard let task = try await tasks.task(id: id, accountID: caller.account.id) else { throw Self.notFound(id) }
            return Relay.json(try await poll(task, logger: context.logger))
        }
        router.post("mj/task/list-by-condition") { request, context in
            let caller = try await caller(request)
            let body = try await InferenceRequest.object(request.collectBody(upTo: maxBodyBytes))
            var found: [JSONValue] = []
            for id in (body["ids"]?.arrayValue ?? []).prefix(100).compactMap(\.stringValue) {
                guard let task = try await tasks.task(id: id, accountID: caller.account.id) else { continue }
                found.append(.object(try await poll(task, logger: context.logger)))
            }
            return Response(
                status: .ok, headers: [.contentType: "application/json"],
                body: .init(byteBuffer: ByteBuffer(bytes: JSONValue.array(found).serialized())))
        }
    }

    private func caller(_ request: Request) async throws -> Caller {
        try await authenticator.authenticate(anyOf: [request.headers[.mjAPISecret], request.bearerToken])
    }

    static func notFound(_ id: String) -> GatewayError {
        GatewayError(status: 404, message: "No task with id '\(id)'.", type: "invalid_request_error", code: "not_found")
    }

    /// The action a submission is priced by: `IMAGINE`, `BLEND`, `DESCRIBE`, …; a change names its
    /// own (`UPSCALE`, `VARIATION`, `REROLL`).
    static func action(_ route: String, body: JSONObject) -> String {
        switch route {
        case "change": return body["action"]?.stringValue?.uppercased() ?? "CHANGE"
        case "simple-change":
            let content = body["content"]?.stringValue ?? ""
            let op = content.split(separator: " ").last.map(String.init) ?? ""
            if op.hasPrefix("U") { return "UPSCALE" }
            if op.hasPrefix("V") { return "VARIATION" }
            if op.uppercased() == "R" { return "REROLL" }
            return "CHANGE"
        case "action":
            let custom = body["customId"]?.stringValue?.lowercased() ?? ""
            if custom.contains("upsample") { return "UPSCALE" }
            if custom.contains("variation") { return "VARIATION" }
            if custom.contains("reroll") { return "REROLL" }
            return "ACTION"
        default: return route.uppercased().replacingOccurrences(of: "-", with: "_")
        }
    }

    private func submit(_ route: String, request: Request, context: GatewayRequestContext) async throws -> Response {
        let caller = try await caller(request)
        var body = try InferenceRequest.object(try await request.collectBody(upTo: maxBodyBytes))
        let named = request.uri.queryParameters.get("model") ?? request.headers[.switchyardModel] ?? body["model"]?.stringValue
        body["model"] = nil
        guard let model = named.flatMap(catalog.model(named:)) ?? (named == nil ? catalog.models.first { $0.endpoints.contains(.midjourney) } : nil)
        else { throw GatewayError.modelNotFound(named ?? "midjourney") }
        guard caller.mayUse(model) else { throw GatewayError.modelNotAllowed(model.name) }
        guard model.endpoints.contains(.midjourney) else {
            throw GatewayError.unsupported("The model '\(model.name)' does not serve drawing tasks.", param: "model")
        }
        let action = Self.action(route, body: body)
        let price = model.price.cost(
            promptTokens: 0, completionTokens: 0, generationMillis: 0, multiplierPPM: caller.account.multiplierPPM,
            media: MediaUsage(tasks: 1, action: action))
        let inference = try InferenceRequest(endpoint: .midjourney, body: ["model": .string(model.name)])
        let admission = try await limits.admit(model: model, caller: caller, endUser: nil, inference: inference, promptEstimate: 0)
        defer { admission.finish(tokens: 0) }
        guard let candidate = router.candidates(for: model, endpoint: .midjourney).first else {
            throw GatewayError.internalError
        }
        let requestID = "mj-" + ResponseIdentity.randomID()
        let open = LedgerOpen(
            requestID: requestID, accountID: caller.account.id, keyID: caller.key.id, endUser: nil, model: model.name,
            deployment: candidate.deployment.id, hold: price, instance: billing.instance, startedAt: clock.unixMillis,
            httpRequestID: context.record?.id, api: "midjourney")
        switch try await billing.store.openHold(open) {
        case .held: break
        case .insufficient(let available): throw GatewayError.insufficientQuota(needed: price, available: available)
        case .accountInactive: throw GatewayError.accountSuspended(caller.account.id)
        }
        let answer: (status: Int, body: [UInt8])
        do {
            answer = try await candidate.provider.task(
                method: "POST", path: "/mj/submit/\(route)", body: body.serialized(), logger: context.logger)
        } catch {
            await settle(open, cost: .zero, status: .failed, reason: EndReason(rawValue: "upstream_error"), units: 0)
            throw UpstreamFailure.gatewayError(error, provider: candidate.provider.config.name)
        }
        guard var object = (try? JSONValue.parse(answer.body))?.objectValue else {
            await settle(open, cost: .zero, status: .failed, reason: EndReason(rawValue: "upstream_error"), units: 0)
            throw GatewayError.upstreamBroken(candidate.provider.config.name, "its task answer is not a JSON object")
        }
        // midjourney-proxy: code 1 submitted, 22 queued; anything else refused the task.
        let code = object["code"]?.intValue ?? 0
        guard (200..<300).contains(answer.status), code == 1 || code == 22, let upstreamID = object["result"]?.stringValue
        else {
            await settle(open, cost: .zero, status: .failed, reason: EndReason(rawValue: "refused"), units: 0)
            return Relay.json(object, status: .init(code: answer.status))
        }
        let id = String(UInt64.random(in: 1_000_000_000_000_000...9_999_999_999_999_999))
        let task = StoredTask(
            id: id, accountID: caller.account.id, requestID: requestID, model: model.name, deployment: candidate.deployment.id,
            provider: candidate.provider.config.name, upstreamID: upstreamID, action: action, cost: price, hold: price,
            createdAt: clock.unixMillis)
        do {
            try await tasks.saveTask(task)
        } catch {
            await settle(open, cost: .zero, status: .failed, reason: EndReason(rawValue: "internal_error"), units: 0)
            throw error
        }
        object["result"] = .string(id)
        return Relay.json(object)
    }

    /// The task as its upstream says now, under the gateway's id; settles it when it has ended.
    func poll(_ task: StoredTask, logger: Logger) async throws -> JSONObject {
        guard let provider = router.providers[task.provider] else { throw Self.notFound(task.id) }
        let answer = try await provider.task(
            method: "GET", path: "/mj/task/\(task.upstreamID)/fetch", body: nil, logger: logger)
        guard (200..<300).contains(answer.status), var object = (try? JSONValue.parse(answer.body))?.objectValue else {
            throw GatewayError.upstreamBroken(task.provider, "it did not answer the task poll (HTTP \(answer.status))")
        }
        object["id"] = .string(task.id)
        if let status = object["status"]?.stringValue, status == "SUCCESS" || status == "FAILURE" {
            await finish(task, outcome: status)
        }
        return object
    }

    /// Records the task's end and settles its row, once: captured on `SUCCESS`, released otherwise.
    func finish(_ task: StoredTask, outcome: String) async {
        do {
            guard try await tasks.finishTask(id: task.id, outcome: outcome, at: clock.unixMillis) else { return }
        } catch {
            logger.warning("could not record a task's end", metadata: ["error.type": "\(type(of: error))"])
            return
        }
        let open = LedgerOpen(
            requestID: task.requestID, accountID: task.accountID, keyID: "", endUser: nil, model: task.model,
            deployment: task.deployment, hold: task.hold, instance: billing.instance, startedAt: task.createdAt)
        let succeeded = outcome == "SUCCESS"
        await settle(
            open, cost: succeeded ? task.cost : .zero, status: succeeded ? .completed : .failed,
            reason: EndReason(rawValue: succeeded ? "stop" : outcome == "FAILURE" ? "task_failed" : "timeout"),
            units: succeeded ? 1 : 0)
    }

    private func settle(_ open: LedgerOpen, cost: Money, status: EndStatus, reason: EndReason, units: Int64) async {
        let now = clock.unixMillis
        let settlement = LedgerSettlement(
            requestID: open.requestID, accountID: open.accountID, hold: open.hold, cost: cost, status: status,
            endReason: reason, httpStatus: 200, promptTokens: 0, completionTokens: 0, usageSource: .none, queueMillis: 0,
            loadMillis: 0, firstTokenMillis: nil, generationMillis: max(0, now - open.startedAt), finishedAt: now,
            units: units, unit: "task")
        do {
            _ = try await billing.store.settle(settlement)
        } catch {
            logger.error("a task's settlement failed", metadata: ["error.type": "\(type(of: error))"])
        }
    }
}

/// Polls running tasks nobody is polling, so every task settles: every 2 s, oldest first, at most
/// 100 a round; a task not ended after `TaskRelay.timeout` is released as failed.
struct TaskWatcher: Service {
    let relay: TaskRelay
    let logger: Logger

    func run() async throws {
        while !Task.isCancelledOrShuttingDown {
            do {
                for task in try await relay.tasks.runningTasks(limit: 100) {
                    guard !Task.isCancelledOrShuttingDown else { break }
                    if relay.clock.unixMillis - task.createdAt > TaskRelay.timeout.millis {
                        await relay.finish(task, outcome: "TIMEOUT")
                        continue
                    }
                    _ = try? await relay.poll(task, logger: logger)
                }
            } catch {
                logger.warning("could not read running tasks", metadata: ["error.type": "\(type(of: error))"])
            }
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: .seconds(2)) }
        }
    }
}

extension HTTPField.Name {
    static let mjAPISecret = Self("mj-api-secret")!
    static let switchyardModel = Self("x-switchyard-model")!
}
