import NIOPosix
import ServiceLifecycle
import Synchronization
import SwitchyardCore

/// The ledger writer: group commit for the hot billing writes, a hold before every request and a
/// settlement after it.
///
/// Writes queue here; `run()` takes one batch at a time to the database — everything queued when it
/// starts — and, when the queue is empty, waits on a continuation that the next write resumes (no
/// timer, no polling: an idle gateway writes each write at once, at the cost of one wake-up). Under
/// load the writes that arrive while a batch commits share the next one, so the cost of a
/// transaction is paid per batch rather than per request. Every write gets its own answer, and none
/// is acknowledged before its batch committed.
///
/// As a `Service` it drains on graceful shutdown (or cancellation): every write queued until then is
/// written and answered, later ones fail with `SQLStoreError.closed`. Register it after the store
/// (whose connections must outlive it) and before whatever submits writes.
///
/// The CLI and the tests use the store without a `ServiceGroup`. Rather than have every such caller
/// run the writer (and hang when one forgets), a write that finds `run()` not started starts a drain
/// task itself, as group commit did before it was a Service; once `run()` starts it takes over, and
/// the store's `close()` drains through `finish()` either way.
///
/// A write whose caller says it is alone (`submit(_:alone:)`: the only request in flight) and that
/// finds the writer parked with nothing queued is written at once on the caller's own thread
/// (`writeHere`), saving the wake-up of the writer's thread and the one back, which at one request
/// at a time are most of a commit's cost. The hint comes from the caller, not from the queue: the
/// queue is also empty between batches under load, and writing there broke the batches up (see
/// docs/BENCHMARKS.md). Writes queued meanwhile wait for it, so the order is kept.
///
/// A write that is not alone, made on an event loop, that finds the writer parked claims it the same
/// way, but is written at the end of the loop's turn: the loop's other requests that write in the
/// same turn (their holds and settlements, run one after another on that thread) queue behind it and
/// share its batch, which the loop then writes itself. Under load this replaces a wake-up of the
/// writer's thread and the wake-ups back with no thread switch at all, and the batches grew: at 64
/// connections, bytes written per request fell from 9.5–10.5 KB to 5.6–8.6 KB.
///
/// Generic over what is written: the ledger's holds and settlements (`BillingWrite`), and the shared
/// limits' admissions and releases (`LimitWrite`), which batch the same way.
final class GroupCommit<Write: Sendable, Output: Sendable>: Service, Sendable {
    typealias Runner = @Sendable ([Write]) async -> [Result<Output, any Error>]
    typealias Completion = @Sendable (Result<Output, any Error>) -> Void

    private struct Pending: Sendable {
        var write: Write
        var completion: Completion
    }

    private enum Phase {
        /// `run()` not called (yet): the fallback drain task writes.
        case unstarted
        case running
        /// Shutting down: what is queued is still written, then the loop ends.
        case stopping
        /// Writes are refused.
        case stopped
    }

    /// What `enqueue` does once the write is queued.
    private enum Next {
        case nothing, wake(CheckedContinuation<Step?, Never>), startFallback, refuse
    }

    /// What the writer's loop does next.
    private enum Step: Sendable {
        case write([Pending])
        case finish
    }

    private struct State {
        var phase = Phase.unstarted
        var queue: [Pending] = []
        var fallbackDraining = false
        /// A caller is writing on its own thread (`submit(_:alone:)`).
        var writingHere = false
        /// The loop, parked on an empty queue; resumed with nil ("look again").
        var waiter: CheckedContinuation<Step?, Never>?

        mutating func takeBatch(_ maxBatch: Int) -> [Pending] {
            let count = min(queue.count, maxBatch)
            defer { queue.removeFirst(count) }
            return Array(queue.prefix(count))
        }

        mutating func takeWaiter() -> CheckedContinuation<Step?, Never>? {
            defer { waiter = nil }
            return waiter
        }

        /// The writer is parked on an empty queue: the caller may write now, and nothing else will.
        mutating func claimIdleWriter() -> Bool {
            guard phase == .running, queue.isEmpty, waiter != nil, !writingHere, !fallbackDraining else { return false }
            writingHere = true
            return true
        }

        /// The caller's write is done: the loop is woken only if something arrived meanwhile (or a
        /// shutdown began), so a write alone costs no wake-up at all.
        mutating func releaseIdleWriter() -> CheckedContinuation<Step?, Never>? {
            writingHere = false
            return queue.isEmpty && phase == .running ? nil : takeWaiter()
        }

        /// nil: wait. The loop never writes while the fallback task or a caller does, so batches
        /// stay in order.
        mutating func nextStep(_ maxBatch: Int) -> Step? {
            guard !fallbackDraining, !writingHere else { return nil }
            if !queue.isEmpty { return .write(takeBatch(maxBatch)) }
            guard phase == .stopping else { return nil }
            phase = .stopped
            return .finish
        }
    }

    /// Bounds one transaction's size (and its statements' bind counts).
    let maxBatch: Int
    private let state = Mutex(State())
    private let commit: Runner
    /// Writes a batch on the caller's thread (SQLite's writer, entered synchronously); nil: never.
    private let writeHere: (@Sendable ([Write]) -> [Result<Output, any Error>])?
    /// Open once `run()` has started (tests wait for it).
    let started = Latch()
    private let stopped = Latch()

    /// Where the writer's loop runs (the database's own thread, for SQLite); nil: Swift's pool.
    private let executor: (any TaskExecutor)?

    init(
        maxBatch: Int = 128, executor: (any TaskExecutor)? = nil,
        writeHere: (@Sendable ([Write]) -> [Result<Output, any Error>])? = nil, commit: @escaping Runner
    ) {
        self.maxBatch = maxBatch
        self.executor = executor
        self.writeHere = writeHere
        self.commit = commit
    }

    /// Not cancellable: once queued, a write happens, and its caller hears how it went.
    func submit(_ write: Write) async throws -> Output {
        try await withCheckedThrowingContinuation { continuation in
            enqueue(write) { continuation.resume(with: $0) }
        }
    }

    /// `alone`: the caller's request is the only one in flight, so no batch is coming for this write
    /// to join; if the writer is parked with nothing queued, the write is made here and now.
    func submit(_ write: Write, alone: Bool) async throws -> Output {
        // A write not alone is made here only on an event loop, whose turn then batches it.
        let loop = alone ? nil : MultiThreadedEventLoopGroup.currentEventLoop
        guard let writeHere, alone || loop != nil, state.withLock({ $0.claimIdleWriter() }) else {
            return try await submit(write)
        }
        guard let loop else {
            let result = writeHere([write]).first ?? Self.missing
            state.withLock { $0.releaseIdleWriter() }?.resume(returning: nil)
            return try result.get()
        }
        // The writer is idle and this loop claimed it: the writes its other requests make in this
        // turn of the loop queue behind this one, and the batch is written at the turn's end, here.
        return try await withCheckedThrowingContinuation { continuation in
            state.withLock { $0.queue.append(Pending(write: write, completion: { continuation.resume(with: $0) })) }
            loop.execute { self.writeQueuedHere(writeHere) }
        }
    }

    private func writeQueuedHere(_ writeHere: @Sendable ([Write]) -> [Result<Output, any Error>]) {
        let batch = state.withLock { $0.takeBatch(maxBatch) }
        Self.answer(batch, with: writeHere(batch.map { $0.write }))
        state.withLock { $0.releaseIdleWriter() }?.resume(returning: nil)
    }

    /// Queues `write` without waiting, for code that cannot await; `completion` runs once, with the
    /// write's answer, after its batch committed (or at once with `SQLStoreError.closed`).
    func enqueue(_ write: Write, completion: @escaping Completion) {
        let next = state.withLock { state -> Next in
            guard state.phase != .stopped else { return .refuse }
            state.queue.append(Pending(write: write, completion: completion))
            guard state.phase == .unstarted else {
                // A caller writing on its thread wakes the writer when it is done, if anything is left.
                if state.writingHere { return .nothing }
                return state.takeWaiter().map(Next.wake) ?? .nothing
            }
            guard !state.fallbackDraining else { return .nothing }
            state.fallbackDraining = true
            return .startFallback
        }
        switch next {
        case .nothing: break
        case .wake(let waiter): waiter.resume(returning: nil)
        case .startFallback: Task(executorPreference: executor) { await self.drainWithoutService() }
        case .refuse: completion(.failure(SQLStoreError.closed))
        }
    }

    func run() async throws {
        let first = state.withLock { state -> Bool in
            guard state.phase == .unstarted else { return false }
            state.phase = .running
            return true
        }
        guard first else { return await stopped.wait() }
        started.open()
        await withTaskCancellationOrGracefulShutdownHandler {
            await withTaskExecutorPreference(executor) { await drain() }
        } onCancelOrGracefulShutdown: {
            self.stop()
        }
    }

    /// Stops taking writes once those queued are written, and returns when they are: the running
    /// service drains them; without one they are drained here.
    func finish() async {
        let drainHere = state.withLock { state -> Bool in
            guard state.phase == .unstarted else { return false }
            state.phase = .stopping
            return true
        }
        if drainHere { return await withTaskExecutorPreference(executor) { await drain() } }
        stop()
        await stopped.wait()
    }

    private func stop() {
        let waiter = state.withLock { state -> CheckedContinuation<Step?, Never>? in
            guard state.phase == .running else { return nil }
            state.phase = .stopping
            return state.takeWaiter()
        }
        waiter?.resume(returning: nil)
    }

    private func drain() async {
        while true {
            switch await nextStep() {
            case .write(let batch): await write(batch)
            case .finish: return stopped.open()
            }
        }
    }

    private func nextStep() async -> Step {
        while true {
            let step: Step? = await withCheckedContinuation { continuation in
                let step = state.withLock { state -> Step? in
                    if let step = state.nextStep(maxBatch) { return step }
                    state.waiter = continuation
                    return nil
                }
                if let step { continuation.resume(returning: step) }
            }
            if let step { return step }
        }
    }

    private func drainWithoutService() async {
        while true {
            let (batch, waiter) = state.withLock { state -> ([Pending]?, CheckedContinuation<Step?, Never>?) in
                if state.phase == .unstarted && !state.queue.isEmpty { return (state.takeBatch(maxBatch), nil) }
                // Empty, or `run()` / `finish()` started meanwhile: the queue is theirs now.
                state.fallbackDraining = false
                return (nil, state.takeWaiter())
            }
            guard let batch else {
                waiter?.resume(returning: nil)
                return
            }
            await write(batch)
        }
    }

    private func write(_ batch: [Pending]) async {
        // A closure, not `\.write`: a key path into a generic type is built at run time, on every call.
        Self.answer(batch, with: await commit(batch.map { $0.write }))
    }

    private static var missing: Result<Output, any Error> { .failure(SQLStoreError.corruptValue("batch result missing")) }

    /// Each write of `batch` hears its own result.
    private static func answer(_ batch: [Pending], with results: [Result<Output, any Error>]) {
        for (index, pending) in batch.enumerated() {
            pending.completion(index < results.count ? results[index] : missing)
        }
    }
}
