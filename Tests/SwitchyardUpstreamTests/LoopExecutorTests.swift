import NIOCore
import NIOPosix
import SwitchyardUpstream
import Testing

@Suite(.timeLimit(.minutes(1))) struct LoopExecutorTests {
    /// What the relay relies on: a task that prefers a loop's executor runs on that loop's thread —
    /// before and after it suspends — and tasks it starts through `current` land on the same loop,
    /// so a request's work and its stream's chunks stay on one thread.
    @Test func tasksRunOnTheirLoopAndWhatTheyStartStaysThere() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let loops = Array(group.makeIterator())
        for loop in loops {
            let executor = LoopExecutor.of(loop)
            #expect(LoopExecutor.of(loop) === executor, "one executor per loop")
            let observed = try await Task(executorPreference: executor) { () async throws -> [Bool] in
                var onLoop = [loop.inEventLoop]
                try await Task.sleep(for: .milliseconds(5))
                onLoop.append(loop.inEventLoop)
                onLoop.append(LoopExecutor.current === executor)
                let child = Task(executorPreference: LoopExecutor.current) { loop.inEventLoop }
                onLoop.append(await child.value)
                return onLoop
            }.value
            #expect(observed == [true, true, true, true])
        }
        // Off every loop there is no current executor, so tasks started there use Swift's pool.
        #expect(LoopExecutor.current == nil)
        #expect(loops.allSatisfy { !$0.inEventLoop })
        try await group.shutdownGracefully()
    }
}
