/// A billing entity (the seed service's `openid`): balance, price multiplier, limits, allowed models.
public struct Account: Sendable, Equatable {
    public enum Status: String, Sendable, CaseIterable { case active, suspended }

    public var id: String
    public var name: String
    public var balance: Money
    /// Sum of the holds of its requests in flight.
    public var held: Money
    /// Price multiplier in millionths (1_000_000 = list price, 800_000 = 20% off).
    public var multiplierPPM: Int64
    public var status: Status
    /// Models its keys may use; `nil` = all.
    public var models: [String]?
    /// Unix seconds.
    public var createdAt: Int64
    /// Its own rate limits (admin API / CLI); the fields it sets win over the config's `limits:`,
    /// `nil` (or a nil field) falls back to them. See `LimitsConfig.effective(for:)`.
    public var limits: LimitsConfig.Caller?

    public var available: Money { balance - held }

    public init(
        id: String, name: String, balance: Money, held: Money = .zero, multiplierPPM: Int64 = 1_000_000,
        status: Status = .active, models: [String]? = nil, createdAt: Int64, limits: LimitsConfig.Caller? = nil
    ) {
        self.limits = limits
        self.id = id
        self.name = name
        self.balance = balance
        self.held = held
        self.multiplierPPM = multiplierPPM
        self.status = status
        self.models = models
        self.createdAt = createdAt
    }
}

/// Changes to an account; `nil` leaves a field as it is. `models: .some(nil)` removes the allow-list.
public struct AccountPatch: Sendable, Equatable {
    public var name: String?
    public var multiplierPPM: Int64?
    public var status: Account.Status?
    public var models: [String]??
    /// Replaces the account's limits as a whole; `.some(nil)` clears them (back to the config's).
    public var limits: LimitsConfig.Caller??

    public init(
        name: String? = nil, multiplierPPM: Int64? = nil, status: Account.Status? = nil, models: [String]?? = nil,
        limits: LimitsConfig.Caller?? = nil
    ) {
        self.limits = limits
        self.name = name
        self.multiplierPPM = multiplierPPM
        self.status = status
        self.models = models
    }
}

/// Changes to a key; `nil` leaves a field as it is. `models: .some(nil)` lets it use all the
/// account may; `expiresAt: .some(nil)` makes it never expire; `limits: .some(nil)` clears its own.
public struct KeyPatch: Sendable, Equatable {
    public var label: String?
    public var models: [String]??
    public var expiresAt: Int64??
    public var limits: LimitsConfig.Caller??

    public init(
        label: String? = nil, models: [String]?? = nil, expiresAt: Int64?? = nil, limits: LimitsConfig.Caller?? = nil
    ) {
        self.label = label
        self.models = models
        self.expiresAt = expiresAt
        self.limits = limits
    }

    public var isEmpty: Bool { label == nil && models == nil && expiresAt == nil && limits == nil }
}

/// A credential of an account. Only the SHA-256 of the secret is ever stored.
public struct APIKey: Sendable, Equatable {
    public var id: String
    public var accountID: String
    /// SHA-256 of the full key text.
    public var hash: [UInt8]
    /// The first characters of the key (`sk-sy-AbCd`), so people can tell keys apart.
    public var prefix: String
    public var label: String
    /// Models this key may use, within the account's; `nil` = all the account may.
    public var models: [String]?
    /// Unix seconds; `nil` = never.
    public var expiresAt: Int64?
    public var revokedAt: Int64?
    public var createdAt: Int64
    /// Its own rate limits, as `Account.limits` but for this key.
    public var limits: LimitsConfig.Caller?

    public init(
        id: String, accountID: String, hash: [UInt8], prefix: String, label: String, models: [String]? = nil,
        expiresAt: Int64? = nil, revokedAt: Int64? = nil, createdAt: Int64, limits: LimitsConfig.Caller? = nil
    ) {
        self.limits = limits
        self.id = id
        self.accountID = accountID
        self.hash = hash
        self.prefix = prefix
        self.label = label
        self.models = models
        self.expiresAt = expiresAt
        self.revokedAt = revokedAt
        self.createdAt = createdAt
    }
}

/// The outcome of a credit (top-up or adjustment).
public enum CreditOutcome: Sendable, Equatable {
    /// Applied now; the account after it.
    case applied(Account)
    /// The idempotency key was used before: nothing changed; the account as it is.
    case duplicate(Account)
    case accountNotFound
}

/// What is known of a request when its hold is taken (the ledger row is written then, status `running`).
public struct LedgerOpen: Sendable, Equatable {
    public var requestID: String
    public var accountID: String
    public var keyID: String
    public var endUser: String?
    public var model: String
    /// `provider/upstream-model`.
    public var deployment: String
    public var hold: Money
    /// Which gateway process runs it, so that a restart releases only its own interrupted requests.
    public var instance: String
    /// Unix milliseconds.
    public var startedAt: Int64
    /// The HTTP request's `x-request-id` (the caller's valid one, or the gateway's), which the request
    /// log line carries too.
    public var httpRequestID: String?
    /// The API the caller used (`chat`, `completions`, `embeddings`, `responses`, `messages`).
    public var api: String?

    public init(
        requestID: String, accountID: String, keyID: String, endUser: String?, model: String, deployment: String,
        hold: Money, instance: String, startedAt: Int64, httpRequestID: String? = nil, api: String? = nil
    ) {
        self.httpRequestID = httpRequestID
        self.api = api
        self.requestID = requestID
        self.accountID = accountID
        self.keyID = keyID
        self.endUser = endUser
        self.model = model
        self.deployment = deployment
        self.hold = hold
        self.instance = instance
        self.startedAt = startedAt
    }
}

public enum HoldOutcome: Sendable, Equatable {
    case held
    /// Balance minus other holds is below the hold; nothing was written.
    case insufficient(available: Money)
    case accountInactive
}

/// How a request ended, to be written to its ledger row when its hold is settled.
public struct LedgerSettlement: Sendable, Equatable {
    /// `reported` by the upstream, counted by the `engine`'s own tokenizer, or `estimated`.
    public enum UsageSource: String, Sendable { case reported, engine, estimated, none }

    public var requestID: String
    public var accountID: String
    public var hold: Money
    /// What the request should cost. The store captures at most what the account can pay
    /// (balance minus its other holds), so a balance never goes below zero.
    public var cost: Money
    public var status: EndStatus
    /// Why it ended: `stop`, `length`, `tool_calls`, `upstream_error`, `cancelled`, `client_closed`, …
    public var endReason: EndReason
    public var httpStatus: Int
    public var promptTokens: Int
    public var completionTokens: Int
    public var usageSource: UsageSource
    public var queueMillis: Int64
    public var loadMillis: Int64
    public var firstTokenMillis: Int64?
    public var generationMillis: Int64
    /// Unix milliseconds.
    public var finishedAt: Int64
    /// The deployment that served the request, when routing moved it off the one recorded at open.
    public var deployment: String?
    /// What routing tried and why it moved on, as compact text (`dep-a:connect_error,dep-b:ok`); nil
    /// when the first attempt answered. Never content.
    public var attempts: String?
    /// What a media request was billed for, in its price's unit (`image`, `character`, `audio_ms`).
    public var units: Int64?
    public var unit: String?

    public init(
        requestID: String, accountID: String, hold: Money, cost: Money, status: EndStatus, endReason: EndReason,
        httpStatus: Int, promptTokens: Int, completionTokens: Int, usageSource: UsageSource, queueMillis: Int64,
        loadMillis: Int64, firstTokenMillis: Int64?, generationMillis: Int64, finishedAt: Int64,
        deployment: String? = nil, attempts: String? = nil, units: Int64? = nil, unit: String? = nil
    ) {
        self.units = units
        self.unit = unit
        self.deployment = deployment
        self.attempts = attempts
        self.requestID = requestID
        self.accountID = accountID
        self.hold = hold
        self.cost = cost
        self.status = status
        self.endReason = endReason
        self.httpStatus = httpStatus
        self.promptTokens = promptTokens
        self.completionTokens = completionTokens
        self.usageSource = usageSource
        self.queueMillis = queueMillis
        self.loadMillis = loadMillis
        self.firstTokenMillis = firstTokenMillis
        self.generationMillis = generationMillis
        self.finishedAt = finishedAt
    }
}

/// One ledger row as stored: `LedgerOpen` plus the settlement (absent fields while running). Never content.
public struct LedgerRow: Sendable, Equatable {
    public var open: LedgerOpen
    public var status: String
    public var endReason: String?
    public var httpStatus: Int?
    public var promptTokens: Int
    public var completionTokens: Int
    public var usageSource: String?
    /// What was captured from the balance.
    public var cost: Money
    public var queueMillis: Int64?
    public var loadMillis: Int64?
    public var firstTokenMillis: Int64?
    public var generationMillis: Int64?
    public var finishedAt: Int64?
    /// See `LedgerSettlement.attempts`.
    public var attempts: String?
    /// See `LedgerSettlement.units`.
    public var units: Int64?
    public var unit: String?

    public init(
        open: LedgerOpen, status: String, endReason: String? = nil, httpStatus: Int? = nil, promptTokens: Int = 0,
        completionTokens: Int = 0, usageSource: String? = nil, cost: Money = .zero, queueMillis: Int64? = nil,
        loadMillis: Int64? = nil, firstTokenMillis: Int64? = nil, generationMillis: Int64? = nil, finishedAt: Int64? = nil,
        attempts: String? = nil, units: Int64? = nil, unit: String? = nil
    ) {
        self.units = units
        self.unit = unit
        self.attempts = attempts
        self.open = open
        self.status = status
        self.endReason = endReason
        self.httpStatus = httpStatus
        self.promptTokens = promptTokens
        self.completionTokens = completionTokens
        self.usageSource = usageSource
        self.cost = cost
        self.queueMillis = queueMillis
        self.loadMillis = loadMillis
        self.firstTokenMillis = firstTokenMillis
        self.generationMillis = generationMillis
        self.finishedAt = finishedAt
    }
}

/// A page of ledger rows, newest first, and the cursor of the next page (nil on the last).
public struct LedgerPage: Sendable, Equatable {
    public var rows: [LedgerRow]
    public var nextCursor: String?

    public init(rows: [LedgerRow], nextCursor: String?) {
        self.rows = rows
        self.nextCursor = nextCursor
    }
}
