import Hummingbird
import NIOCore
import SwitchyardCore

/// A streaming client whose provider is not ready (a managed engine must start and load, which can
/// take minutes) is not left staring at a silent socket: its 200 and SSE headers go out at once, a
/// `: loading <model>` comment follows every `loadingNotice` (valid SSE; clients ignore comments,
/// proxies see traffic), then the answer streams as usual. Committing early means no other
/// deployment can be tried once the wait began; a load that fails ends the stream with an error
/// event, a client that leaves while waiting leaves the provider's queue (its wait is cancelled) and
/// pays nothing, and the wait's length is the ledger's `load_ms`, never billed.
extension Exchange {
    func streamAfterLoading() -> Response {
        _ = ticket.handle(.committed)
        let exchange = self
        return Relay.eventStream { writer in try await exchange.loadThenRelay(into: &writer) }
    }

    private enum Step: Sendable {
        case loaded(Duration)
        case tick
        case signalled
    }

    private func loadThenRelay(into writer: inout any ResponseBodyWriter) async throws {
        let opening: Opening
        do {
            try await waitForLoad(writing: &writer)
            opening = try await open(preparing: false)
        } catch {
            try await finishWithoutOutput(ticket.handle(event(for: error, charge: false, committed: true)), into: &writer)
            return
        }
        _ = ticket.handle(.upstreamAnswered)
        answered()
        switch opening {
        case .events(let events, let first):
            try await pipe(events, first: first, stream: makeStream(), into: &writer)
        case .complete(let object):
            try await finishWhole(object)
            let chunks = StreamSynthesizer.chunks(
                from: object, endpoint: endpoint, identity: plan.identity, includeUsage: inference.includeUsage)
            try await writeComposed(chunks, usage: ticket.billableUsage(charge: true), into: &writer)
        }
    }

    /// Waits for the provider, writing a comment every `loadingNotice`; a stop or the client's
    /// departure ends the wait (and so cancels the provider's preparation for this request).
    private func waitForLoad(writing writer: inout any ResponseBodyWriter) async throws {
        let provider = self.provider
        let logger = self.logger
        let signals = [client, stop].compactMap { $0 }
        let interval = loadingNotice
        let notice = ByteBuffer(string: ": loading \(plan.identity.model)\n\n")
        try await withThrowingTaskGroup(of: Step.self) { group in
            group.addTask { .loaded(try await provider.prepare(logger: logger)) }
            group.addTask {
                await Signal.firstFire(of: signals)
                return .signalled
            }
            group.addTask {
                try await Task.sleep(for: interval)
                return .tick
            }
            defer { group.cancelAll() }
            while let step = try await group.next() {
                switch step {
                case .loaded(let duration):
                    if duration > .zero { ticket.recordLoad(duration) }
                    return
                case .signalled:
                    throw CancellationError()
                case .tick:
                    try await writer.write(notice)
                    group.addTask {
                        try await Task.sleep(for: interval)
                        return .tick
                    }
                }
            }
        }
    }

    /// The stream had begun (comments only) when it ended without output: an error event, the
    /// stopped answer, or nothing for a client that is gone — and the settlement.
    private func finishWithoutOutput(_ action: RequestLifecycle.Action, into writer: inout any ResponseBodyWriter) async throws {
        switch action {
        case .finishWithError(let error, let outcome):
            var stream = makeStream()
            try? await writer.write(ByteBuffer(bytes: stream.failed(error, usage: ticket.billableUsage(charge: outcome.charge))))
            await ticket.settle(outcome)
        case .fail(let error, let outcome):
            var stream = makeStream()
            try? await writer.write(
                ByteBuffer(bytes: stream.failed(error.errorObject, usage: ticket.billableUsage(charge: outcome.charge))))
            await ticket.settle(outcome)
        case .finishStopped(let outcome):
            var stream = makeStream()
            try? await writer.write(ByteBuffer(bytes: stream.stopped(usage: ticket.billableUsage(charge: outcome.charge))))
            await ticket.settle(outcome)
        case .abandon(let outcome), .finish(let outcome):
            await ticket.settle(outcome)
            throw CancellationError()
        case .none, .attempt, .tryNext:
            break
        }
    }
}
