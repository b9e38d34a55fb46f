import Foundation
import Testing

@testable import SwitchyardStore

/// `SQLiteCheckpointer`: the log is checkpointed on the checkpointer's thread, not in the commits
/// that fill it, and the committing writer steps in only at the cap, which keeps the log bounded.
@Suite struct CheckpointTests {
    /// A database file in a fresh directory, its table made; removed after `body`.
    private func withDatabase(_ body: (String, SQLiteDirect) async throws -> Void) async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("switchyard-checkpoint-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("db.sqlite").path
        let writer = try SQLiteDirect(path: path)
        try writer.execute("CREATE TABLE rows (id INTEGER PRIMARY KEY, body TEXT NOT NULL)")
        try await body(path, writer)
        writer.close()
    }

    /// Commits `count` rows of 3 000 bytes each, one transaction each: at least one page apiece.
    private func commit(_ count: Int, into writer: SQLiteDirect, from first: Int = 0) throws {
        let body = String(repeating: "x", count: 3_000)
        for id in first..<(first + count) {
            try writer.execute("BEGIN IMMEDIATE")
            try writer.execute("INSERT INTO rows (id, body) VALUES (?1, ?2)", [.int(Int64(id)), .text(body)])
            try writer.execute("COMMIT")
        }
    }

    private func size(_ path: String) -> Int {
        ((try? FileManager.default.attributesOfItem(atPath: path)[.size]) as? Int) ?? 0
    }

    @Test func theLogIsCheckpointedOffTheWriter() async throws {
        try await withDatabase { path, writer in
            let checkpointer = try SQLiteCheckpointer(path: path, backgroundFrames: 20, inlineFrames: 1_000_000)
            checkpointer.watch(writer)
            let before = size(path)
            // Five rounds of 60 commits, each past the threshold. A round that arrives while a
            // checkpoint is still queued joins it, so each waits (bounded) for the one it started.
            for round in 0..<5 {
                try commit(60, into: writer, from: round * 60)
                let deadline = ContinuousClock.now + .seconds(10)
                while checkpointer.runs.background <= round, ContinuousClock.now < deadline {
                    try await Task.sleep(for: .milliseconds(5))
                }
            }
            #expect(checkpointer.runs.background >= 5)
            #expect(checkpointer.runs.inline == 0)
            // The pages reached the database file, which without a checkpoint stays as it was.
            #expect(size(path) - before > 100 * 3_000)
            await checkpointer.close()
            #expect(try writer.query("SELECT COUNT(*) FROM rows", []) { $0.int(0) } == [300])
        }
    }

    @Test func theWriterCheckpointsItselfAtTheCapAndTheLogStaysBounded() async throws {
        try await withDatabase { path, writer in
            // A background threshold never reached: only the cap makes checkpoints.
            let stalled = try SQLiteCheckpointer(path: path, backgroundFrames: 1_000_000, inlineFrames: 60)
            stalled.watch(writer)
            try commit(600, into: writer)
            #expect(stalled.runs.background == 0)
            #expect(stalled.runs.inline >= 5)
            // Each inline checkpoint let the log start over: it never held much more than the cap.
            #expect(size(path + "-wal") < 200 * 4_200)
            #expect(size(path) > 500 * 3_000)
            await stalled.close()
        }
    }

    @Test func withoutTheHookSQLitesOwnCheckpointIsReplacedOnlyWhereWatched() async throws {
        try await withDatabase { path, writer in
            // Unwatched, the connection keeps SQLite's automatic checkpoint at 1 000 pages.
            try commit(1_200, into: writer)
            #expect(size(path) > 900 * 3_000)
            // Watched with a cap out of reach and a checkpointer that is closed: nothing is copied back.
            let checkpointer = try SQLiteCheckpointer(path: path, backgroundFrames: 1_000_000, inlineFrames: 2_000_000)
            checkpointer.watch(writer)
            let before = size(path)
            try commit(1_200, into: writer, from: 1_200)
            #expect(size(path) == before)
            #expect(checkpointer.runs.background == 0 && checkpointer.runs.inline == 0)
            await checkpointer.close()
        }
    }
}
