import Dispatch
import Foundation
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import Synchronization
import SwitchyardCore
import Testing

@testable import SwitchyardStore

extension SQLBillingStoreTests {
    /// A batch must come to exactly what the same writes one at a time would: the same answers, the
    /// same balances, the same ledger rows. Each kind of write and each refusal is in the batch,
    /// several of them on the same account so the in-memory bookkeeping between them is exercised.
    @Test(arguments: Backend.available)
    func aBatchEqualsTheSameWritesOneAtATime(_ backend: Backend) async throws {
        try await withStore(backend) { store, batchFixture in
            enum Way { case batch, alone, hotPath, hotPathAlone }
            // Both executors of `BillingBatch`: SQLKit as one batch and as batches of one, and on
            // SQLite the direct hot path, likewise.
            var ways: [(Fixture, Way)] = [(batchFixture, .batch), (Fixture(), .alone)]
            if store.hotPath != nil { ways += [(Fixture(), .hotPath), (Fixture(), .hotPathAlone)] }
            var outcomes: [[String]] = []
            var states: [[String]] = []
            let logger = Logger(label: "test")
            for (fixture, way) in ways {
                try await store.createAccount(fixture.account("a", balance: 1_000))
                try await store.createAccount(fixture.account("b", balance: 5_000))
                try await store.createAccount(fixture.account("s", balance: 1_000, status: .suspended))
                // Opened before the batch, settled in it.
                #expect(try await store.openHold(fixture.open("r0", account: "a", hold: 300)) == .held)
                #expect(try await store.openHold(fixture.open("r5", account: "b", hold: 50)) == .held)

                var routed = fixture.settlement("r5", account: "b", hold: 50, cost: 9_000)
                routed.deployment = "backup/qwen"
                routed.attempts = "local/qwen:connect_error,backup/qwen:ok"
                let writes: [BillingWrite] = [
                    .settle(fixture.settlement("r0", account: "a", hold: 300, cost: 100)),
                    .hold(fixture.open("r1", account: "a", hold: 600)),
                    .hold(fixture.open("r2", account: "a", hold: 500)),
                    .hold(fixture.open("r3", account: "s", hold: 1)),
                    .hold(fixture.open("r4", account: "ghost", hold: 1)),
                    .hold(fixture.open("r0", account: "a", hold: 1)),
                    .settle(fixture.settlement("r0", account: "a", hold: 300, cost: 100)),
                    .settle(fixture.settlement("never", account: "a", hold: 1, cost: 1)),
                    // More than the account can pay: the capture is capped at its balance.
                    .settle(routed),
                    .hold(fixture.open("r6", account: "b", hold: 10)),
                    .hold(fixture.open("r7", account: "a", hold: 300)),
                    // Opened in this batch, settled in it.
                    .settle(fixture.settlement("r1", account: "a", hold: 600, cost: 50)),
                ]
                let sqlKit = SQLKitBatchExecutor(runner: store.runner)
                var results: [Result<BillingWriteResult, any Error>] = []
                switch way {
                case .batch:
                    // `execute`, not `apply`: the batch itself, with no fallback to one at a time.
                    results = try await sqlKit.execute(writes).map { $0.mapError { $0 } }
                case .alone:
                    for write in writes { results += await sqlKit.apply([write], logger: logger) }
                case .hotPath:
                    results = try await #require(store.hotPath).execute(writes).map { $0.mapError { $0 } }
                case .hotPathAlone:
                    let hotPath = try #require(store.hotPath)
                    for write in writes { results += await hotPath.apply([write], logger: logger) }
                }
                outcomes.append(results.map { result in
                    switch result {
                    case .success(.held(let outcome)): "held \(outcome)"
                    case .success(.settled(let capture)): "settled \(capture.map(\.description) ?? "nil")"
                    case .failure(let error): "error \(type(of: error))"
                    }
                })
                var state: [String] = []
                for name in ["a", "b", "s"] {
                    let account = try #require(try await store.account(id: fixture.id(name)))
                    state.append("\(name) balance \(account.balance.micros) held \(account.held.micros)")
                }
                let rows = try await store.ledger(accountID: nil, from: fixture.epoch, to: fixture.epoch + 1, limit: 50, cursor: nil).rows
                for row in rows.sorted(by: { $0.open.requestID < $1.open.requestID }) {
                    state.append(
                        "\(row.open.requestID.replacingOccurrences(of: fixture.tag, with: "")) \(row.status) "
                            + "cost \(row.cost.micros) hold \(row.open.hold.micros) deployment \(row.open.deployment) "
                            + "attempts \(row.attempts ?? "-") tokens \(row.promptTokens)/\(row.completionTokens) "
                            + "first \(row.firstTokenMillis.map(String.init) ?? "-") finished \(row.finishedAt.map { String($0 - fixture.epoch) } ?? "-")")
                }
                states.append(state)
            }
            #expect(outcomes.count == ways.count)
            for index in outcomes.indices.dropFirst() {
                #expect(outcomes[index] == outcomes[0])
                #expect(states[index] == states[0])
            }
            // And what that is, spelled out for the first run.
            #expect(outcomes[0] == [
                "settled 0.0001", "held held", "held insufficient(available: 0.0003)",
                "held accountInactive", "held accountInactive", "error BillingStoreError", "settled nil", "settled nil",
                "settled 0.005", "held insufficient(available: 0.00)", "held held", "settled 0.00005",
            ])
            #expect(states[0].prefix(3) == [
                "a balance 850 held 300", "b balance 0 held 0", "s balance 1000 held 0",
            ])
            #expect(states[0].contains {
                $0.hasPrefix("-r5 completed cost 5000 hold 50 deployment backup/qwen attempts local/qwen:connect_error,backup/qwen:ok")
            })
        }
    }

    /// Many writes from many tasks at once go through the queue in batches; each gets its own answer
    /// and the books add up.
    @Test(arguments: Backend.available)
    func concurrentWritesAreBatchedAndEachAnswered(_ backend: Backend) async throws {
        try await withStore(backend) { store, fixture in
            try await store.createAccount(fixture.account("a", balance: 100_000))
            let outcomes = try await withThrowingTaskGroup(of: Money?.self) { group in
                for index in 0..<300 {
                    group.addTask {
                        let hold = Int64(100 + index % 7)
                        guard try await store.openHold(fixture.open("r\(index)", account: "a", hold: hold)) == .held else {
                            return nil
                        }
                        return try await store.settle(fixture.settlement("r\(index)", account: "a", hold: hold, cost: Int64(index % 5)))
                    }
                }
                return try await group.reduce(into: [Money?]()) { $0.append($1) }
            }
            #expect(outcomes.count == 300)
            let captured = outcomes.compactMap { $0?.micros }.reduce(0, +)
            #expect(captured == (0..<300).map { Int64($0 % 5) }.reduce(0, +))
            let account = try #require(try await store.account(id: fixture.id("a")))
            #expect(account.held == .zero)
            #expect(account.balance.micros == 100_000 - captured)
        }
    }
}

/// The ledger writer on its own, with a commit that takes its time: writes that arrive while a batch
/// runs share the next one, every write gets its own answer, a write on a quiet queue goes alone, and
/// a shutdown writes what was queued and refuses the rest — as a Service and without one.
@Suite(.timeLimit(.minutes(1))) struct GroupCommitQueueTests {
    /// Answers a hold with its amount, so each caller can check it got its own answer.
    final class SlowCommit: Sendable {
        let batches = Mutex<[Int]>([])

        func commit(_ writes: [BillingWrite]) async -> [Result<BillingWriteResult, any Error>] {
            batches.withLock { $0.append(writes.count) }
            try? await Task.sleep(for: .milliseconds(20))
            return writes.map { write in
                guard case .hold(let open) = write else { return .success(.settled(nil)) }
                return .success(.settled(open.hold))
            }
        }
    }

    static func open(_ index: Int) -> LedgerOpen {
        LedgerOpen(
            requestID: "r\(index)", accountID: "a", keyID: "k", endUser: nil, model: "m", deployment: "d",
            hold: Money(micros: Int64(index)), instance: "i", startedAt: 0)
    }

    /// The writer in a group of its own, `body` while it runs, then a graceful shutdown.
    static func whileServing<Write: Sendable, Output: Sendable>(
        _ commits: GroupCommit<Write, Output>, _ body: () async throws -> Void
    ) async throws {
        try await whileServing(commits) { _ in try await body() }
    }

    /// The same, `body` given the group (to begin the shutdown itself).
    static func whileServing<Write: Sendable, Output: Sendable>(
        _ commits: GroupCommit<Write, Output>, _ body: (ServiceGroup) async throws -> Void
    ) async throws {
        var logger = Logger(label: "store-tests")
        logger.logLevel = .warning
        let group = ServiceGroup(services: [commits], logger: logger)
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            await commits.started.wait()
            try await body(group)
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
    }

    @Test(arguments: [true, false])
    func writesArrivingDuringABatchShareTheNextAndEachIsAnswered(asService: Bool) async throws {
        let slow = SlowCommit()
        let commits = GroupCommit<BillingWrite, BillingWriteResult>(commit: slow.commit)
        let exercise = {
            let answers = try await withThrowingTaskGroup(of: (Int, Int64?).self) { group in
                for index in 0..<50 {
                    group.addTask {
                        guard case .settled(let money) = try await commits.submit(.hold(Self.open(index))) else {
                            return (index, nil)
                        }
                        return (index, money?.micros)
                    }
                }
                return try await group.reduce(into: [Int: Int64?]()) { $0[$1.0] = $1.1 }
            }
            // Each caller got the answer to its own write.
            #expect(answers.count == 50)
            #expect(answers.allSatisfy { $0.value == Int64($0.key) })
            let sizes = slow.batches.withLock { $0 }
            #expect(sizes.reduce(0, +) == 50)
            #expect(sizes.count < 50)
            #expect(sizes.max() ?? 0 > 1)

            // Quiet again: a lone write is a batch of one.
            try await Task.sleep(for: .milliseconds(50))
            _ = try await commits.submit(.hold(Self.open(99)))
            #expect(slow.batches.withLock { $0.last } == 1)
            #expect(slow.batches.withLock { $0.reduce(0, +) } == 51)
        }
        if asService {
            try await Self.whileServing(commits, exercise)
        } else {
            try await exercise()
            await commits.finish()
        }
        await #expect(throws: SQLStoreError.closed) { try await commits.submit(.hold(Self.open(100))) }
    }

    /// Writes queued before the shutdown, most of them behind a batch in progress, are all written
    /// and answered; a write after the writer stopped fails at once rather than waiting forever.
    @Test(arguments: [true, false])
    func shutdownWritesWhatIsQueuedAndRefusesTheRest(asService: Bool) async throws {
        let slow = SlowCommit()
        let commits = GroupCommit<BillingWrite, BillingWriteResult>(maxBatch: 8, commit: slow.commit)
        let answers = Mutex<[Int: Int64]>([:])
        let enqueueAll = {
            for index in 0..<40 {
                commits.enqueue(.hold(Self.open(index))) { result in
                    guard case .success(.settled(let money?)) = result else { return }
                    answers.withLock { $0[index] = money.micros }
                }
            }
        }
        if asService {
            try await Self.whileServing(commits) { enqueueAll() }
        } else {
            enqueueAll()
            await commits.finish()
        }
        #expect(answers.withLock { $0 } == Dictionary(uniqueKeysWithValues: (0..<40).map { ($0, Int64($0)) }))
        #expect(slow.batches.withLock { $0.reduce(0, +) } == 40)

        let late = Mutex<(any Error)?>(nil)
        commits.enqueue(.hold(Self.open(41))) { result in
            if case .failure(let error) = result { late.withLock { $0 = error } }
        }
        #expect(late.withLock { $0 as? SQLStoreError } == .closed)
        await #expect(throws: SQLStoreError.closed) { try await commits.submit(.hold(Self.open(42))) }
        #expect(slow.batches.withLock { $0.reduce(0, +) } == 40)
    }
}

/// Group commit's loop on the database's own thread (SQLite's writer): each batch is written where
/// the loop took it, with no hop to that thread and back.
@Suite(.timeLimit(.minutes(1))) struct GroupCommitExecutorTests {
    @Test func batchesAreWrittenOnTheWritersQueue() async throws {
        let queue = DispatchQueue(label: "test.writer")
        let executor = QueueExecutor(queue)
        #expect(!executor.isCurrent)
        let commits = GroupCommit<Int, Bool>(executor: executor) { writes in
            writes.map { _ in .success(executor.isCurrent) }
        }
        // Without a service the fallback drain writes, on the queue too.
        let answers = try await withThrowingTaskGroup(of: Bool.self) { group in
            for write in 0..<20 { group.addTask { try await commits.submit(write) } }
            return try await group.reduce(into: [Bool]()) { $0.append($1) }
        }
        #expect(answers.count == 20 && answers.allSatisfy { $0 })
        await commits.finish()
    }
}

/// A write whose caller is alone (`submit(_:alone:)`) and finds the writer parked is written on the
/// caller's own thread, with no wake-up of the writer; anything else still goes through the queue, in
/// order, and a shutdown during such a write still drains and ends.
@Suite(.timeLimit(.minutes(1))) struct GroupCommitAloneTests {
    /// Records where each write was made, in order; `hereDelay` (seconds) keeps a write here busy.
    final class Writes: Sendable {
        let log = Mutex<[String]>([])
        let hereDelay = Mutex<TimeInterval>(0)
        /// The batches written here, and whether each was written on an event loop's thread.
        let batchesHere = Mutex<[(writes: [Int], onLoop: Bool)]>([])

        func here(_ writes: [Int]) -> [Result<String, any Error>] {
            log.withLock { $0 += writes.map { "here \($0)" } }
            batchesHere.withLock { $0.append((writes, MultiThreadedEventLoopGroup.currentEventLoop != nil)) }
            let delay = hereDelay.withLock { $0 }
            if delay > 0 {
                Thread.sleep(forTimeInterval: delay)
                log.withLock { $0.append("done here") }
            }
            return writes.map { _ in .success("here") }
        }

        func loop(_ writes: [Int]) async -> [Result<String, any Error>] {
            log.withLock { $0 += writes.map { "loop \($0)" } }
            return writes.map { _ in .success("loop") }
        }
    }

    static func commits(_ writes: Writes) -> GroupCommit<Int, String> {
        GroupCommit(writeHere: { writes.here($0) }, commit: { await writes.loop($0) })
    }

    /// Submits `write` alone until the writer is found parked (it parks right after it starts, or
    /// after its last batch), at most 200 times 5 ms.
    static func submitAloneOnceParked(_ commits: GroupCommit<Int, String>, _ write: Int) async throws -> String {
        for _ in 0..<200 {
            let answer = try await commits.submit(write, alone: true)
            if answer == "here" { return answer }
            try await Task.sleep(for: .milliseconds(5))
        }
        return "never here"
    }

    @Test func aLoneWriteIsMadeOnTheCallersThreadAndOthersOnTheLoop() async throws {
        let writes = Writes()
        let commits = Self.commits(writes)
        let exercise: () async throws -> Void = {
            let first = try await Self.submitAloneOnceParked(commits, 1)
            #expect(first == "here")
            // Not alone: the queue, always.
            for write in 2...4 {
                let answer = try await commits.submit(write, alone: false)
                #expect(answer == "loop")
            }
            let last = try await Self.submitAloneOnceParked(commits, 5)
            #expect(last == "here")
        }
        try await GroupCommitQueueTests.whileServing(commits, exercise)
        let log = writes.log.withLock { $0 }
        #expect(log.filter { $0.hasPrefix("here") } == ["here 1", "here 5"])
        // (Tries that found the writer busy went through the loop: "loop 1", "loop 5".)
        #expect(log.filter { ["loop 2", "loop 3", "loop 4"].contains($0) } == ["loop 2", "loop 3", "loop 4"])
    }

    /// Requests on one event loop whose writes find the writer parked: the first claims it, the others
    /// made in the same turn of the loop join its batch, and the batch is written on the loop at the
    /// turn's end — no wake-up of the writer's thread, and one commit for all.
    @Test func writesMadeInOneTurnOfAnEventLoopShareABatchWrittenThere() async throws {
        let writes = Writes()
        let commits = Self.commits(writes)
        let executor = OnLoop(MultiThreadedEventLoopGroup.singleton.next())
        try await GroupCommitQueueTests.whileServing(commits) {
            #expect(try await Self.submitAloneOnceParked(commits, 0) == "here")
            let answers = try await Task(executorPreference: executor) {
                try await withThrowingTaskGroup(of: String.self) { group in
                    // The three tasks start in this order in the loop's next turn.
                    for write in 1...3 { group.addTask { try await commits.submit(write, alone: false) } }
                    return try await group.reduce(into: [String]()) { $0.append($1) }
                }
            }.value
            #expect(answers == ["here", "here", "here"])
        }
        let batches = writes.batchesHere.withLock { $0 }
        #expect(batches.map(\.writes) == [[0], [1, 2, 3]])
        #expect(batches.last?.onLoop == true)
        #expect(!writes.log.withLock { $0 }.contains { ["loop 1", "loop 2", "loop 3"].contains($0) })
    }

    /// A task executor that runs its jobs on an event loop, as the gateway's connections do.
    final class OnLoop: TaskExecutor, Sendable {
        let loop: any EventLoop
        init(_ loop: any EventLoop) { self.loop = loop }
        func enqueue(_ job: consuming ExecutorJob) {
            let job = UnownedJob(job)
            let executor = asUnownedTaskExecutor()
            loop.execute { job.runSynchronously(on: executor) }
        }
    }

    /// Without the service (the CLI, tests) nothing is written here: the fallback drain writes.
    @Test func withoutTheServiceALoneWriteStillGoesThroughTheQueue() async throws {
        let writes = Writes()
        let commits = Self.commits(writes)
        #expect(try await commits.submit(1, alone: true) == "loop")
        await commits.finish()
        #expect(writes.log.withLock { $0 } == ["loop 1"])
    }

    /// Writes that arrive while one is made here wait for it (the loop does not write meanwhile), then
    /// are written by the loop; a shutdown that begins meanwhile waits for both and ends.
    @Test func writesArrivingMeanwhileFollowAndShutdownStillEnds() async throws {
        let writes = Writes()
        let commits = Self.commits(writes)
        try await GroupCommitQueueTests.whileServing(commits) { (group: ServiceGroup) in
            // A write here leaves the writer parked, so the next lone write is made here too.
            #expect(try await Self.submitAloneOnceParked(commits, 0) == "here")
            writes.hereDelay.withLock { $0 = 0.2 }
            let alone = Task { try await commits.submit(1, alone: true) }
            try await Task.sleep(for: .milliseconds(50))
            let others = Task {
                try await withThrowingTaskGroup(of: String.self) { group in
                    for write in 2...4 { group.addTask { try await commits.submit(write, alone: false) } }
                    return try await group.reduce(into: [String]()) { $0.append($1) }
                }
            }
            try await Task.sleep(for: .milliseconds(50))
            await group.triggerGracefulShutdown()
            #expect(try await alone.value == "here")
            #expect(try await others.value == ["loop", "loop", "loop"])
        }
        let log = writes.log.withLock { $0 }.filter { $0 != "loop 0" }
        // Nothing was written by the loop while the write here was being made.
        #expect(log.prefix(3) == ["here 0", "here 1", "done here"])
        #expect(Set(log.dropFirst(3)) == ["loop 2", "loop 3", "loop 4"])
        await #expect(throws: SQLStoreError.closed) { try await commits.submit(9, alone: true) }
    }
}
