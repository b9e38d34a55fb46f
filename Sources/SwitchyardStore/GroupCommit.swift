import Synchronization
import SwitchyardCore

/// One of the two billing writes every request makes.
enum BillingWrite: Sendable {
    case hold(LedgerOpen)
    case settle(LedgerSettlement)

    var requestID: String {
        switch self {
        case .hold(let open): open.requestID
        case .settle(let settlement): settlement.requestID
        }
    }
}

/// What a `BillingWrite` came to.
enum BillingWriteResult: Sendable {
    case held(HoldOutcome)
    case settled(Money?)
}

/// Group commit for the hot billing writes: a hold before every request and a settlement after it.
///
/// Writes queue here; one batch at a time goes to the database, taking everything queued when it
/// starts. An idle gateway sends each write on its own at once (no timer, no added wait); under load
/// the writes that arrive while a batch commits share the next one, so the cost of a transaction
/// (and, on SQLite, of each statement's trip to the database thread) is paid per batch rather than
/// per request. Every write still gets its own answer, and none is acknowledged before its batch
/// committed, so nothing is lost that a caller was told had happened.
final class GroupCommit: Sendable {
    typealias Runner = @Sendable ([BillingWrite]) async -> [Result<BillingWriteResult, any Error>]

    private struct Pending {
        var write: BillingWrite
        var continuation: CheckedContinuation<BillingWriteResult, any Error>
    }

    private struct State {
        var queue: [Pending] = []
        var draining = false
    }

    /// Bounds one transaction's size (and its statements' bind counts).
    let maxBatch: Int
    private let state = Mutex(State())
    private let run: Runner

    init(maxBatch: Int = 128, run: @escaping Runner) {
        self.maxBatch = maxBatch
        self.run = run
    }

    /// Not cancellable: once queued, a write happens, and its caller hears how it went.
    func submit(_ write: BillingWrite) async throws -> BillingWriteResult {
        try await withCheckedThrowingContinuation { continuation in
            let startDrain = state.withLock { state -> Bool in
                state.queue.append(Pending(write: write, continuation: continuation))
                guard !state.draining else { return false }
                state.draining = true
                return true
            }
            if startDrain {
                Task { await self.drain() }
            }
        }
    }

    private func drain() async {
        while true {
            let batch = state.withLock { state -> [Pending] in
                let count = min(state.queue.count, maxBatch)
                let batch = Array(state.queue.prefix(count))
                state.queue.removeFirst(count)
                if batch.isEmpty { state.draining = false }
                return batch
            }
            guard !batch.isEmpty else { return }
            let results = await run(batch.map(\.write))
            for (index, pending) in batch.enumerated() {
                pending.continuation.resume(
                    with: index < results.count ? results[index] : .failure(SQLStoreError.corruptValue("batch result missing")))
            }
        }
    }
}
