/// An asynchronous task (a midjourney-proxy drawing job) as kept while it runs: whose it is, the
/// ledger row that holds its price, where it runs and what the upstream calls it. No prompt.
public struct StoredTask: Sendable, Equatable {
    /// The id the caller sees (the gateway's own).
    public var id: String
    public var accountID: String
    /// The ledger row (and hold) of its submission.
    public var requestID: String
    public var model: String
    /// `provider/model`.
    public var deployment: String
    public var provider: String
    /// The upstream's task id.
    public var upstreamID: String
    /// `IMAGINE`, `UPSCALE`, `VARIATION`, `REROLL`, `DESCRIBE`, `BLEND`, …
    public var action: String
    /// What it costs if it succeeds (the account's multiplier applied).
    public var cost: Money
    public var hold: Money
    /// Unix milliseconds.
    public var createdAt: Int64
    /// `SUCCESS` or `FAILURE` once it ended; nil while it runs.
    public var outcome: String?

    public init(
        id: String, accountID: String, requestID: String, model: String, deployment: String, provider: String,
        upstreamID: String, action: String, cost: Money, hold: Money, createdAt: Int64, outcome: String? = nil
    ) {
        self.id = id
        self.accountID = accountID
        self.requestID = requestID
        self.model = model
        self.deployment = deployment
        self.provider = provider
        self.upstreamID = upstreamID
        self.action = action
        self.cost = cost
        self.hold = hold
        self.createdAt = createdAt
        self.outcome = outcome
    }
}

/// Where running tasks are kept. A task's ledger row stays `running` (its hold taken) until the task
/// ends; `finishTask` marks the end exactly once, whoever sees it first (a poll, the watcher, another
/// replica), and only that caller settles the row.
public protocol TaskStore: Sendable {
    func saveTask(_ task: StoredTask) async throws
    func task(id: String, accountID: String) async throws -> StoredTask?
    /// Tasks still running, oldest first.
    func runningTasks(limit: Int) async throws -> [StoredTask]
    /// Records the task's end; true for the one caller that recorded it.
    func finishTask(id: String, outcome: String, at: Int64) async throws -> Bool
}
