import ArgumentParser
import Foundation
import Logging
import SwitchyardCore
import SwitchyardServer
import SwitchyardStore

/// Runs `body` against the configured database, closing it afterwards, and prints the JSON it returns.
func withStore(_ options: ConfigOption, _ body: (SQLBillingStore, Accounts) async throws -> String) async throws {
    let config = try options.load()
    var logger = Logger(label: "switchyard")
    logger.logLevel = .warning
    let store = try await openStore(config: config, logger: logger)
    do {
        print(try await body(store, Accounts(store: store)))
        await store.close()
    } catch let error as GatewayError {
        await store.close()
        FileHandle.standardError.write(Data("switchyard: \(error.message)\n".utf8))
        throw ExitCode.failure
    } catch {
        await store.close()
        throw error
    }
}

func parseMoney(_ text: String, _ name: String) throws -> Money {
    guard let money = Money(text) else { throw ValidationError("\(name): '\(text)' is not an amount with at most 6 decimals") }
    return money
}

/// A price multiplier in parts per million.
func parseMultiplier(_ text: String) throws -> Int64 {
    guard let ppm = Decimals.parse(text, places: 6), ppm >= 0 else {
        throw ValidationError("--multiplier: expected a decimal such as 0.8")
    }
    return ppm
}

func parseList(_ text: String?) -> [String]? {
    text.map { $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } }
}

/// `--rpm`, `--tpm`, `--concurrent`: an account's or key's own rate limits, as the admin API's `limits`.
struct LimitOptions: ParsableArguments {
    @Option(help: "Requests per minute (this one's own limit; overrides the config's).") var rpm: Int?
    @Option(help: "Tokens per minute.") var tpm: Int?
    @Option(help: "Concurrent requests.") var concurrent: Int?

    /// nil when no flag is given.
    func limits() throws -> LimitsConfig.Caller? {
        let checks = [
            ("--rpm", rpm, LimitsConfig.Caller.requestsPerMinuteRange), ("--tpm", tpm, LimitsConfig.Caller.tokensPerMinuteRange),
            ("--concurrent", concurrent, LimitsConfig.Caller.concurrentRange),
        ]
        for (name, value, range) in checks {
            if let value, !range.contains(value) { throw ValidationError("\(name): expected an integer from 1 to \(range.upperBound)") }
        }
        let limits = LimitsConfig.Caller(requestsPerMinute: rpm, tokensPerMinute: tpm, concurrent: concurrent)
        return limits.isEmpty ? nil : limits
    }
}

struct Migrate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Create or upgrade the database schema.")
    @OptionGroup var options: ConfigOption

    func run() async throws {
        try await withStore(options) { _, _ in "database migrated" }
    }
}

struct AccountsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "accounts", abstract: "Create, list, show and change accounts.",
        subcommands: [Create.self, List.self, Show.self, Update.self])

    struct Create: AsyncParsableCommand {
        @OptionGroup var options: ConfigOption
        @Option(help: "Account id (the seed's openid); generated when omitted.") var id: String?
        @Option var name: String
        @Option(help: "Starting balance, e.g. 10.00.") var balance = "0"
        @Option(help: "Price multiplier, e.g. 0.8 for 20% off.") var multiplier = "1"
        @Option(help: "Comma-separated models the account may use (default: all).") var models: String?
        @OptionGroup var limitOptions: LimitOptions

        func run() async throws {
            let balance = try parseMoney(balance, "--balance")
            let ppm = try parseMultiplier(multiplier)
            let limits = try limitOptions.limits()
            try await withStore(options) { _, accounts in
                let account = try await accounts.createAccount(
                    id: id, name: name, balance: balance, multiplierPPM: ppm, models: parseList(models), limits: limits)
                return AdminJSON.account(account)
            }
        }
    }

    struct List: AsyncParsableCommand {
        @OptionGroup var options: ConfigOption
        @Option var limit = 100
        @Option(help: "List accounts after this id.") var after: String?

        func run() async throws {
            try await withStore(options) { store, _ in
                try await store.accounts(limit: limit, after: after).map(AdminJSON.account).joined(separator: "\n")
            }
        }
    }

    struct Show: AsyncParsableCommand {
        @OptionGroup var options: ConfigOption
        @Argument var id: String

        func run() async throws {
            try await withStore(options) { _, accounts in AdminJSON.account(try await accounts.account(id: id)) }
        }
    }

    struct Update: AsyncParsableCommand {
        @OptionGroup var options: ConfigOption
        @Argument var id: String
        @Option var name: String?
        @Option var multiplier: String?
        @Option(help: "active or suspended.") var status: String?
        @Option(help: "Comma-separated allowed models; an empty string allows all.") var models: String?
        @OptionGroup(title: "Limits (any of them replaces the account's limits as a whole)") var limitOptions: LimitOptions
        @Flag(help: "Remove the account's own limits (the config's apply again).") var clearLimits = false

        func run() async throws {
            var patch = AccountPatch(name: name)
            let limits = try limitOptions.limits()
            if clearLimits && limits != nil { throw ValidationError("--clear-limits cannot be combined with --rpm, --tpm or --concurrent") }
            if clearLimits { patch.limits = .some(nil) } else if let limits { patch.limits = .some(limits) }
            if let multiplier { patch.multiplierPPM = try parseMultiplier(multiplier) }
            if let status {
                guard let value = Account.Status(rawValue: status) else { throw ValidationError("--status: active or suspended") }
                patch.status = value
            }
            if let models { patch.models = .some(models.isEmpty ? nil : parseList(models)) }
            try await withStore(options) { _, accounts in AdminJSON.account(try await accounts.updateAccount(id: id, patch)) }
        }
    }
}

struct KeysCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keys", abstract: "Create, list and revoke API keys.", subcommands: [Create.self, List.self, Revoke.self])

    struct Create: AsyncParsableCommand {
        @OptionGroup var options: ConfigOption
        @Option var account: String
        @Option var label = ""
        @Option(help: "Comma-separated models the key may use (default: all the account may).") var models: String?
        @Option(help: "Expiry as unix seconds.") var expiresAt: Int64?
        @OptionGroup var limitOptions: LimitOptions

        func run() async throws {
            let limits = try limitOptions.limits()
            try await withStore(options) { _, accounts in
                let created = try await accounts.createKey(
                    accountID: account, label: label, models: parseList(models), expiresAt: expiresAt, limits: limits)
                return AdminJSON.key(created.key, secret: created.secret)
            }
        }
    }

    struct List: AsyncParsableCommand {
        @OptionGroup var options: ConfigOption
        @Option var account: String

        func run() async throws {
            try await withStore(options) { store, _ in
                try await store.keys(accountID: account).map { AdminJSON.key($0, secret: nil) }.joined(separator: "\n")
            }
        }
    }

    struct Revoke: AsyncParsableCommand {
        @OptionGroup var options: ConfigOption
        @Argument(help: "The key's id (key_…), not the key itself.") var id: String

        func run() async throws {
            try await withStore(options) { _, accounts in
                try await accounts.revokeKey(id: id)
                return "revoked \(id)"
            }
        }
    }
}

struct CreditsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "credits", abstract: "Top up or adjust balances.", subcommands: [Add.self])

    struct Add: AsyncParsableCommand {
        @OptionGroup var options: ConfigOption
        @Option var account: String
        @Option(help: "Amount, e.g. 5.00; negative adjusts down.") var amount: String
        @Option var reason = "top-up"
        @Option(help: "The same key twice changes the balance once.") var idempotencyKey: String?

        func run() async throws {
            let money = try parseMoney(amount, "--amount")
            try await withStore(options) { _, accounts in
                let result = try await accounts.addCredit(
                    accountID: account, amount: money, reason: reason, idempotencyKey: idempotencyKey)
                return AdminJSON.account(result.account) + (result.applied ? "" : "\n(idempotency key seen before: not applied again)")
            }
        }
    }
}

struct UsageCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "usage", abstract: "Print ledger rows as CSV.")
    @OptionGroup var options: ConfigOption
    @Option var account: String?
    @Option var limit = 100

    func run() async throws {
        try await withStore(options) { store, _ in
            let page = try await store.ledger(accountID: account, from: nil, to: nil, limit: limit, cursor: nil)
            return AdminJSON.usageCSV(page.rows)
        }
    }
}
