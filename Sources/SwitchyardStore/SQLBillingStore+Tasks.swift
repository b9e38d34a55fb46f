import SQLKit
import SwitchyardCore

/// Running drawing tasks. A task's ledger row is not released at a restart (it is still running
/// upstream): `recoverInterrupted` skips the rows of unfinished tasks.
extension SQLBillingStore: TaskStore {
    static let taskColumns =
        "id, account_id, request_id, model, deployment, provider, upstream_id, action, cost_micros, hold_micros, created_at, outcome"

    public func saveTask(_ task: StoredTask) async throws {
        try await runner.transaction { database in
            try await database.raw(
                """
                INSERT INTO tasks (id, account_id, request_id, model, deployment, provider, upstream_id, action,
                    cost_micros, hold_micros, created_at)
                VALUES (\(bind: task.id), \(bind: task.accountID), \(bind: task.requestID), \(bind: task.model),
                    \(bind: task.deployment), \(bind: task.provider), \(bind: task.upstreamID), \(bind: task.action),
                    \(bind: task.cost.micros), \(bind: task.hold.micros), \(bind: task.createdAt))
                """
            ).run()
        }
    }

    public func task(id: String, accountID: String) async throws -> StoredTask? {
        try await runner.read { database in
            try await database.raw(
                "SELECT \(unsafeRaw: Self.taskColumns) FROM tasks WHERE id = \(bind: id) AND account_id = \(bind: accountID)"
            ).all().first?.storedTask()
        }
    }

    public func runningTasks(limit: Int) async throws -> [StoredTask] {
        try await runner.read { database in
            try await database.raw(
                """
                SELECT \(unsafeRaw: Self.taskColumns) FROM tasks WHERE finished_at IS NULL
                ORDER BY created_at LIMIT \(bind: max(0, limit))
                """
            ).all().map { try $0.storedTask() }
        }
    }

    public func finishTask(id: String, outcome: String, at: Int64) async throws -> Bool {
        try await runner.transaction { database in
            try await database.raw(
                """
                UPDATE tasks SET outcome = \(bind: outcome), finished_at = \(bind: at)
                WHERE id = \(bind: id) AND finished_at IS NULL RETURNING id
                """
            ).all().count == 1
        }
    }
}

extension SQLRow {
    func storedTask() throws -> StoredTask {
        StoredTask(
            id: try value("id"), accountID: try value("account_id"), requestID: try value("request_id"),
            model: try value("model"), deployment: try value("deployment"), provider: try value("provider"),
            upstreamID: try value("upstream_id"), action: try value("action"),
            cost: Money(micros: try value("cost_micros")), hold: Money(micros: try value("hold_micros")),
            createdAt: try value("created_at"), outcome: try optional("outcome"))
    }
}
