import SwitchyardCore
import SwitchyardUpstream
import Testing

@Suite(.timeLimit(.minutes(1))) struct ConnectionGateTests {
    @Test func waitersAreBoundedAndServedInOrder() async throws {
        let gate = ConnectionGate(capacity: 1, maxWaiters: 2)
        try await gate.acquire()
        let order = OrderLog()
        let first = Task {
            try await gate.acquire()
            await order.append(1)
        }
        while gate.usage.waiting < 1 { await Task.yield() }
        let second = Task {
            try await gate.acquire()
            await order.append(2)
        }
        while gate.usage.waiting < 2 { await Task.yield() }
        await #expect(throws: UpstreamError.overloaded) { try await gate.acquire() }
        gate.release()
        try await first.value
        gate.release()
        try await second.value
        #expect(await order.values == [1, 2])
        #expect(gate.usage.inUse == 1 && gate.usage.waiting == 0)
        gate.release()
        #expect(gate.usage.inUse == 0)
    }

    @Test func aCancelledWaiterLeavesTheQueue() async throws {
        let gate = ConnectionGate(capacity: 1, maxWaiters: 1)
        #expect(gate.tryAcquire())
        let waiter = Task { try await gate.acquire() }
        while gate.usage.waiting < 1 { await Task.yield() }
        waiter.cancel()
        await #expect(throws: CancellationError.self) { try await waiter.value }
        #expect(gate.usage.waiting == 0)
        gate.release()
        #expect(gate.usage.inUse == 0)
        #expect(gate.tryAcquire())
    }
}

private actor OrderLog {
    var values: [Int] = []
    func append(_ value: Int) { values.append(value) }
}
