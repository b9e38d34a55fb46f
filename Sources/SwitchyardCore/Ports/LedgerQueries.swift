/// One day's use of one model by an account (UTC days), for the console's chart.
public struct UsageDay: Sendable, Equatable {
    /// Days since 1970-01-01 (UTC).
    public var day: Int64
    public var model: String
    public var requests: Int64
    public var promptTokens: Int64
    public var completionTokens: Int64
    public var cost: Money

    public init(day: Int64, model: String, requests: Int64, promptTokens: Int64, completionTokens: Int64, cost: Money) {
        self.day = day
        self.model = model
        self.requests = requests
        self.promptTokens = promptTokens
        self.completionTokens = completionTokens
        self.cost = cost
    }
}

/// Reads of the ledger beyond its pages: one row, and use summed by day and model.
public protocol LedgerQueries: Sendable {
    /// The row of `requestID`, if it belongs to `accountID` (any account when nil).
    func ledgerRow(requestID: String, accountID: String?) async throws -> LedgerRow?
    /// Requests, tokens and cost per UTC day and model, from `from` (unix ms, inclusive) to `to` (exclusive).
    func usageByDay(accountID: String?, from: Int64?, to: Int64?) async throws -> [UsageDay]
}
