import SwitchyardCore

/// The wire forms of billing records as text, for the CLI (the same shapes the admin API returns).
public enum AdminJSON {
    public static func account(_ account: Account) -> String {
        BillingJSON.account(account).serializedText
    }

    public static func key(_ key: APIKey, secret: String?) -> String {
        BillingJSON.key(key, secret: secret).serializedText
    }

    public static func usageCSV(_ rows: [LedgerRow]) -> String {
        rows.reduce(into: BillingJSON.csvHeader) { $0 += BillingJSON.csvLine($1) }
    }
}

extension JSONObject {
    var serializedText: String { String(decoding: serialized(), as: UTF8.self) }
}
