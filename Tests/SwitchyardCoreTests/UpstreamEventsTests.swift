import Testing

@testable import SwitchyardCore

@Suite(.timeLimit(.minutes(1))) struct UpstreamEventsTests {
    @Test func deliversBufferedAndWaitedForPayloadsThenEnds() async throws {
        let events = UpstreamEvents()
        events.yield([1])
        let waiter = Task { try await [events.next(), events.next(), events.next()] }
        try await Task.sleep(for: .milliseconds(20))
        events.yield([2])
        events.finish()
        #expect(try await waiter.value == [[1], [2], nil])
        #expect(try await events.next() == nil)
    }

    @Test func cancelRunsTheProducersHandlerAndWakesTheConsumer() async throws {
        let events = UpstreamEvents()
        let stopped = Stopped()
        events.onCancel { stopped.set() }
        let waiter = Task { try await events.next() }
        try await Task.sleep(for: .milliseconds(20))
        events.cancel()
        await #expect(throws: CancellationError.self) { try await waiter.value }
        #expect(stopped.value)
    }

    @Test func cancellingTheConsumingTaskCancelsTheEvents() async throws {
        let events = UpstreamEvents()
        let stopped = Stopped()
        events.onCancel { stopped.set() }
        let waiter = Task { try await events.next() }
        try await Task.sleep(for: .milliseconds(20))
        waiter.cancel()
        await #expect(throws: CancellationError.self) { try await waiter.value }
        #expect(stopped.value)
    }
}

final class Stopped: Sendable {
    private let flag = Synchronization.Mutex(false)
    func set() { flag.withLock { $0 = true } }
    var value: Bool { flag.withLock { $0 } }
}

import Synchronization
