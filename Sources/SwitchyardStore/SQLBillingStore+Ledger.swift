import Foundation
import SQLKit
import SwitchyardCore

extension SQLBillingStore {
    /// Keyset pagination on (started_at, request_id), so pages stay consistent while rows are added.
    public func ledger(accountID: String?, from: Int64?, to: Int64?, limit: Int, cursor: String?) async throws -> LedgerPage {
        let position = try cursor.map(LedgerCursor.init(text:))
        let pageSize = max(limit, 1)
        var query: SQLQueryString = "SELECT \(unsafeRaw: Columns.list(Columns.ledger)) FROM ledger WHERE 1 = 1"
        if let accountID { query += " AND account_id = \(bind: accountID)" }
        if let from { query += " AND started_at >= \(bind: from)" }
        if let to { query += " AND started_at < \(bind: to)" }
        if let position {
            query += """
                 AND (started_at < \(bind: position.startedAt)
                    OR (started_at = \(bind: position.startedAt) AND request_id < \(bind: position.requestID)))
                """
        }
        // One more than asked for tells whether another page follows.
        query += " ORDER BY started_at DESC, request_id DESC LIMIT \(bind: pageSize + 1)"
        let finalQuery = query
        let rows = try await runner.read { database in
            try await database.raw(finalQuery).all().map { try $0.ledgerRow() }
        }
        guard rows.count > pageSize else { return LedgerPage(rows: rows, nextCursor: nil) }
        let page = Array(rows.prefix(pageSize))
        let last = page[page.count - 1].open
        return LedgerPage(rows: page, nextCursor: LedgerCursor(startedAt: last.startedAt, requestID: last.requestID).text)
    }
}

/// The position after a ledger row, as opaque URL-safe text: base64url of `startedAt:requestID`.
struct LedgerCursor: Equatable {
    var startedAt: Int64
    var requestID: String

    init(startedAt: Int64, requestID: String) {
        self.startedAt = startedAt
        self.requestID = requestID
    }

    init(text: String) throws {
        var base64 = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        base64 += String(repeating: "=", count: (4 - base64.count % 4) % 4)
        guard let data = Data(base64Encoded: base64), let decoded = String(data: data, encoding: .utf8) else {
            throw BillingStoreError.invalidCursor
        }
        let parts = decoded.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
        guard parts.count == 2, let startedAt = Int64(parts[0]), !parts[1].isEmpty else {
            throw BillingStoreError.invalidCursor
        }
        self.init(startedAt: startedAt, requestID: String(parts[1]))
    }

    var text: String {
        Data("\(startedAt):\(requestID)".utf8).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }
}

extension SQLBillingStore: LedgerQueries {
    public func ledgerRow(requestID: String, accountID: String?) async throws -> LedgerRow? {
        var query: SQLQueryString = "SELECT \(unsafeRaw: Columns.list(Columns.ledger)) FROM ledger WHERE request_id = \(bind: requestID)"
        if let accountID { query += " AND account_id = \(bind: accountID)" }
        let finalQuery = query
        return try await runner.read { database in try await database.raw(finalQuery).all().first?.ledgerRow() }
    }

    public func usageByDay(accountID: String?, from: Int64?, to: Int64?) async throws -> [UsageDay] {
        var query: SQLQueryString = """
            SELECT started_at / 86400000 AS day, model, COUNT(*) AS requests,
                CAST(SUM(prompt_tokens) AS BIGINT) AS prompt_tokens,
                CAST(SUM(completion_tokens) AS BIGINT) AS completion_tokens,
                CAST(SUM(cost_micros) AS BIGINT) AS cost
            FROM ledger WHERE 1 = 1
            """
        if let accountID { query += " AND account_id = \(bind: accountID)" }
        if let from { query += " AND started_at >= \(bind: from)" }
        if let to { query += " AND started_at < \(bind: to)" }
        query += " GROUP BY started_at / 86400000, model ORDER BY day, model"
        let finalQuery = query
        return try await runner.read { database in
            try await database.raw(finalQuery).all().map { row in
                UsageDay(
                    day: try row.value("day"), model: try row.value("model"), requests: try row.value("requests"),
                    promptTokens: try row.value("prompt_tokens"), completionTokens: try row.value("completion_tokens"),
                    cost: Money(micros: try row.value("cost")))
            }
        }
    }
}
