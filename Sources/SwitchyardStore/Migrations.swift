import Foundation
import Logging
import SQLKit

/// The schema, as numbered steps applied in order and recorded in `schema_migrations`. Steps are
/// append-only: once released, a step never changes; a later step alters what it made.
enum Migrations {
    struct Step: Sendable {
        var version: Int
        var statements: @Sendable (StoreBackend) -> [String]
    }

    static let steps: [Step] = [
        Step(version: 1, statements: initialSchema),
        // Routing: what was tried before the deployment that answered (issue 5).
        Step(version: 2, statements: { _ in ["ALTER TABLE ledger ADD COLUMN attempts TEXT"] }),
        // Rate limits set per account and per key through the admin API / CLI: a JSON object of
        // `requests_per_minute`, `tokens_per_minute`, `concurrent`; NULL = not set (the config's apply).
        Step(version: 3, statements: { _ in
            ["ALTER TABLE accounts ADD COLUMN limits TEXT", "ALTER TABLE api_keys ADD COLUMN limits TEXT"]
        }),
        // The HTTP request's `x-request-id` (the caller's, or the gateway's own), so operators can
        // join the request log and the bill (issue 16).
        Step(version: 4, statements: { _ in ["ALTER TABLE ledger ADD COLUMN http_request_id TEXT"] }),
        // The API the caller used (`chat`, `responses`, `messages`…): agents' routes are billed on
        // the same rows (issue 17). NULL on rows written before.
        Step(version: 5, statements: { _ in ["ALTER TABLE ledger ADD COLUMN api TEXT"] }),
        // Media requests are billed in images, characters or audio milliseconds (issue 12).
        Step(version: 6, statements: { _ in
            ["ALTER TABLE ledger ADD COLUMN units BIGINT", "ALTER TABLE ledger ADD COLUMN unit TEXT"]
        }),
        // Uploads for vision and user data, kept until they expire (files.retention; issue 12).
        Step(version: 7, statements: { backend in
            [
                """
                CREATE TABLE files (
                    id TEXT PRIMARY KEY,
                    account_id TEXT NOT NULL REFERENCES accounts (id),
                    filename TEXT NOT NULL,
                    purpose TEXT NOT NULL,
                    media_type TEXT NOT NULL,
                    bytes BIGINT NOT NULL,
                    created_at BIGINT NOT NULL,
                    expires_at BIGINT NOT NULL,
                    content \(backend.bytesType) NOT NULL
                )
                """,
                "CREATE INDEX files_account ON files (account_id, created_at)",
                "CREATE INDEX files_expiry ON files (expires_at)",
            ]
        }),
        // Asynchronous drawing tasks: their ledger row stays running (held) until they end (issue 12).
        Step(version: 8, statements: { _ in
            [
                """
                CREATE TABLE tasks (
                    id TEXT PRIMARY KEY,
                    account_id TEXT NOT NULL REFERENCES accounts (id),
                    request_id TEXT NOT NULL,
                    model TEXT NOT NULL,
                    deployment TEXT NOT NULL,
                    provider TEXT NOT NULL,
                    upstream_id TEXT NOT NULL,
                    action TEXT NOT NULL,
                    cost_micros BIGINT NOT NULL,
                    hold_micros BIGINT NOT NULL,
                    created_at BIGINT NOT NULL,
                    outcome TEXT,
                    finished_at BIGINT
                )
                """,
                "CREATE INDEX tasks_running ON tasks (finished_at, created_at)",
            ]
        }),
        // Shared state for several replicas on PostgreSQL (issue 14); unused on SQLite. One row per
        // limited scope with its windows' buckets (`b:amount,…`, at most 61 each), one row per
        // concurrency slot held (a lease its replica renews), one row per live replica.
        Step(version: 9, statements: { backend in
            [
                """
                CREATE TABLE limit_windows (
                    scope TEXT PRIMARY KEY,
                    requests TEXT NOT NULL,
                    tokens TEXT NOT NULL,
                    touched_ms BIGINT NOT NULL
                )
                """,
                """
                CREATE TABLE limit_leases (
                    grant_id BIGINT NOT NULL,
                    scope TEXT NOT NULL,
                    instance TEXT NOT NULL,
                    expires_ms BIGINT NOT NULL
                )
                """,
                "CREATE INDEX limit_windows_touched ON limit_windows (touched_ms)",
                "CREATE INDEX limit_leases_scope ON limit_leases (scope, expires_ms)",
                "CREATE INDEX limit_leases_grant ON limit_leases (grant_id)",
                "CREATE INDEX limit_leases_instance ON limit_leases (instance)",
                "CREATE TABLE replicas (instance TEXT PRIMARY KEY, seen_ms BIGINT NOT NULL, started_ms BIGINT NOT NULL)",
            ]
                // Finding an end user's requests running on other replicas; on SQLite (one process)
                // it would only slow every hold and settlement down.
                + (backend == .postgres ? ["CREATE INDEX ledger_account_status ON ledger (account_id, status)"] : [])
        }),
        // Only running rows are ever looked up by instance (a restart's or a survivor's release):
        // indexing just those keeps the index to the requests in flight, a page or two that every
        // hold and settlement shares, instead of one entry per row ever written that each settlement
        // moved from `running` to its end status (issue 15).
        Step(version: 10, statements: { _ in
            [
                "DROP INDEX ledger_instance_status",
                "CREATE INDEX ledger_running ON ledger (instance) WHERE status = 'running'",
            ]
        }),
    ]

    /// Serialises migrations of gateway replicas starting together (an arbitrary constant).
    static let postgresLockKey: Int64 = 0x5377_6974_6368_7964

    /// Applies the missing steps in one transaction, so a failure leaves the schema as it was.
    static func migrate(_ runner: any TransactionRunner, logger: Logger) async throws {
        let backend = runner.backend
        try await runner.transaction { database in
            if backend == .postgres {
                // Before anything else: even CREATE TABLE IF NOT EXISTS races with itself there.
                try await database.raw("SELECT pg_advisory_xact_lock(\(bind: postgresLockKey))").run()
            }
            try await database.raw(
                "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)"
            ).run()
            let applied = Set(
                try await database.raw("SELECT version FROM schema_migrations").all().map {
                    try $0.decode(column: "version", as: Int.self)
                }
            )
            for step in steps where !applied.contains(step.version) {
                for statement in step.statements(backend) {
                    try await database.raw(SQLQueryString(statement)).run()
                }
                let now = Int64(Date().timeIntervalSince1970 * 1000)
                try await database.raw(
                    "INSERT INTO schema_migrations (version, applied_at) VALUES (\(bind: step.version), \(bind: now))"
                ).run()
                logger.debug("applied billing schema migration", metadata: ["version": "\(step.version)"])
            }
        }
    }

    /// Money in integer micro-units, times in unix seconds (accounts, keys, credits) or
    /// milliseconds (ledger). The ledger never holds prompt or completion content.
    private static func initialSchema(_ backend: StoreBackend) -> [String] {
        [
            """
            CREATE TABLE accounts (
                id TEXT PRIMARY KEY,
                name TEXT NOT NULL,
                balance_micros BIGINT NOT NULL,
                held_micros BIGINT NOT NULL DEFAULT 0 CHECK (held_micros >= 0),
                multiplier_ppm BIGINT NOT NULL,
                status TEXT NOT NULL,
                models TEXT,
                created_at BIGINT NOT NULL
            )
            """,
            """
            CREATE TABLE api_keys (
                id TEXT PRIMARY KEY,
                account_id TEXT NOT NULL REFERENCES accounts (id),
                hash \(backend.bytesType) NOT NULL UNIQUE,
                prefix TEXT NOT NULL,
                label TEXT NOT NULL,
                models TEXT,
                expires_at BIGINT,
                revoked_at BIGINT,
                created_at BIGINT NOT NULL
            )
            """,
            "CREATE INDEX api_keys_account ON api_keys (account_id)",
            """
            CREATE TABLE credits (
                id TEXT PRIMARY KEY,
                account_id TEXT NOT NULL REFERENCES accounts (id),
                amount_micros BIGINT NOT NULL,
                reason TEXT NOT NULL,
                idempotency_key TEXT UNIQUE,
                created_at BIGINT NOT NULL
            )
            """,
            "CREATE INDEX credits_account ON credits (account_id, created_at)",
            """
            CREATE TABLE ledger (
                request_id TEXT PRIMARY KEY,
                account_id TEXT NOT NULL REFERENCES accounts (id),
                key_id TEXT NOT NULL,
                end_user TEXT,
                model TEXT NOT NULL,
                deployment TEXT NOT NULL,
                instance TEXT NOT NULL,
                hold_micros BIGINT NOT NULL,
                status TEXT NOT NULL,
                end_reason TEXT,
                http_status BIGINT,
                prompt_tokens BIGINT NOT NULL DEFAULT 0,
                completion_tokens BIGINT NOT NULL DEFAULT 0,
                usage_source TEXT,
                cost_micros BIGINT NOT NULL DEFAULT 0,
                queue_ms BIGINT,
                load_ms BIGINT,
                first_token_ms BIGINT,
                generation_ms BIGINT,
                started_at BIGINT NOT NULL,
                finished_at BIGINT
            )
            """,
            "CREATE INDEX ledger_account_started ON ledger (account_id, started_at)",
            "CREATE INDEX ledger_instance_status ON ledger (instance, status)",
            // The all-accounts listing pages by time too.
            "CREATE INDEX ledger_started ON ledger (started_at)",
            "CREATE TABLE settings (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
        ]
    }
}
