import Dispatch
import Synchronization
import VaporCSQLite

/// Checkpoints SQLite's write-ahead log on a thread and a connection of its own, so that no request
/// waits for the disk.
///
/// SQLite's own automatic checkpoint runs inside the `COMMIT` that takes the log past 1 000 pages.
/// With `synchronous = NORMAL` a commit never calls `fsync`, but a checkpoint calls it twice: on the
/// log, then on the database file. On the hot path that `COMMIT` is a hold or a settlement, on the
/// writer's thread or on an event loop (`GroupCommit.submit(_:alone:)`), so about one request in a
/// hundred waited for two `fsync`s, and on a busy disk those take 100 ms and more. Every request
/// queued behind it waited too.
///
/// The hot connection's log hook (`sqlite3_wal_hook`, which replaces the automatic checkpoint)
/// hands the work to this thread instead. Each 1 000 pages appended start a `PASSIVE` checkpoint
/// here. Such a checkpoint takes no lock that a writer needs and never waits for one, so the writer
/// appends meanwhile. The guarantees do not change: the log is still synced before any page is
/// copied back.
///
/// SQLite starts the log over only when a write begins with every frame copied back. A checkpoint
/// that runs beside the writer always leaves the frames appended during it, so under load that
/// never came true and the log would grow. When the log passes `inlineFrames` pages, the commit that
/// took it there copies the rest itself, as SQLite would. Most frames have been copied back by then,
/// so that checkpoint is short and rare: once per 16 000 pages instead of once per 1 000.
///
/// `@unchecked Sendable`: `connection` is only touched on `queue`; the rest is atomic.
final class SQLiteCheckpointer: @unchecked Sendable {
    /// Pages appended since the last checkpoint that start a new one here: SQLite's default.
    let backgroundFrames: Int32
    /// Pages in the log at which the committing writer checkpoints itself (see above).
    let inlineFrames: Int32

    private let queue = DispatchQueue(label: "switchyard.sqlite.checkpoint")
    private var connection: SQLiteDirect?
    /// The log's length in frames when the last checkpoint here was started (0 after a restart).
    private let started = Atomic<Int32>(0)
    /// The log's length when the writer last checkpointed itself (0 after a restart).
    private let inlineAt = Atomic<Int32>(0)
    private let scheduled = Atomic<Bool>(false)
    private let backgroundRuns = Atomic<Int>(0)
    private let inlineRuns = Atomic<Int>(0)

    static let defaultInlineFrames: Int32 = 16_000

    init(path: String, backgroundFrames: Int32 = 1_000, inlineFrames: Int32 = defaultInlineFrames) throws {
        precondition(backgroundFrames > 0 && inlineFrames > 0)
        self.backgroundFrames = backgroundFrames
        self.inlineFrames = inlineFrames
        connection = try SQLiteDirect(path: path)
    }

    /// How many checkpoints ran here and how many on the writer, for the tests.
    var runs: (background: Int, inline: Int) { (backgroundRuns.load(ordering: .relaxed), inlineRuns.load(ordering: .relaxed)) }

    /// Called on the writer's thread after each commit, with the log's length in frames.
    func committed(database: OpaquePointer, frames: Int32) {
        var last = started.load(ordering: .relaxed)
        if frames < last || frames < inlineAt.load(ordering: .relaxed) {  // the log started over
            started.store(0, ordering: .relaxed)
            inlineAt.store(0, ordering: .relaxed)
            last = 0
        }
        // Past the cap, at most once per `backgroundFrames` (or cap) pages: a reader still on an old
        // snapshot can keep the log from starting over, and a checkpoint per commit would be an
        // `fsync` per commit.
        if frames >= inlineFrames, frames - inlineAt.load(ordering: .relaxed) >= min(backgroundFrames, inlineFrames) {
            // With the checkpoint here running this returns `SQLITE_BUSY` at once; the next commit tries again.
            if SQLiteDirect.checkpointPassively(database) {
                inlineAt.store(frames, ordering: .relaxed)
                inlineRuns.add(1, ordering: .relaxed)
            }
            return
        }
        if frames - last >= backgroundFrames, !scheduled.exchange(true, ordering: .acquiringAndReleasing) {
            started.store(frames, ordering: .relaxed)
            queue.async { self.checkpoint() }
        }
    }

    /// Registers `committed` as the log hook of `database` (the writer's connection), replacing
    /// SQLite's automatic checkpoint. The checkpointer must outlive the connection.
    func watch(_ database: SQLiteDirect) {
        database.setLogHook(context: Unmanaged.passUnretained(self).toOpaque()) { context, database, _, frames in
            if let context, let database {
                Unmanaged<SQLiteCheckpointer>.fromOpaque(context).takeUnretainedValue()
                    .committed(database: database, frames: frames)
            }
            return SQLITE_OK
        }
    }

    private func checkpoint() {
        scheduled.store(false, ordering: .releasing)
        guard let connection else { return }
        if connection.checkpointPassively() { backgroundRuns.add(1, ordering: .relaxed) }
    }

    /// Waits for a checkpoint in progress, then closes the connection; later ones are not run.
    func close() async {
        await queue.afterQueued {
            self.connection?.close()
            self.connection = nil
        }
    }
}

extension SQLiteDirect {
    /// Runs a `PASSIVE` checkpoint of the main database; false when it could not start (another
    /// checkpoint is running) or failed.
    func checkpointPassively() -> Bool {
        rawHandle.map(Self.checkpointPassively) ?? false
    }

    /// The same on a connection's handle (inside its log hook).
    static func checkpointPassively(_ handle: OpaquePointer) -> Bool {
        var logged: Int32 = 0
        var copied: Int32 = 0
        return sqlite_nio_sqlite3_wal_checkpoint_v2(handle, nil, SQLITE_CHECKPOINT_PASSIVE, &logged, &copied) == SQLITE_OK
    }
}

extension DispatchQueue {
    /// Runs `body` on this queue after what is queued before it, and returns once it has run.
    func afterQueued(_ body: @escaping @Sendable () -> Void) async {
        await withCheckedContinuation { continuation in
            self.async {
                body()
                continuation.resume()
            }
        }
    }
}
