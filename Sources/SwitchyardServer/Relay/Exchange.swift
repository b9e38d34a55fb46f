import Hummingbird
import Logging
import NIOCore
import SwitchyardCore

/// One admitted request's exchange with its upstream, along one of four paths: whole → whole,
/// stream → whole (assembled), whole → stream (synthesised), stream → stream (relayed chunk by
/// chunk). Every path settles the ticket. Errors before the client got anything are thrown (and
/// settled by the caller with no charge). A caller's stop (`stop` fires) cancels the upstream at once
/// and ends the answer cleanly with what was generated, marked `"end_reason": "cancelled"`.
struct Exchange: Sendable {
    let plan: RelayPlan
    let inference: InferenceRequest
    let provider: any Provider
    let ticket: BillingTicket
    let client: Signal?
    let stop: Signal
    let logger: Logger

    var providerName: String { provider.config.name }
    var endpoint: Endpoint { inference.endpoint }

    /// What an attempt got from its upstream before anything was sent to the client.
    enum Opening: Sendable {
        /// A whole answer.
        case complete(JSONObject)
        /// A stream and its first event (`nil`: it ended at once).
        case events(UpstreamEvents, first: [UInt8]?)
        /// The caller stopped the request before the upstream produced anything.
        case stopped
    }

    /// Sends the request and waits for the upstream's first sign of a good answer: a whole body that
    /// is a JSON object, or a stream's first event. Everything it throws happened before the client
    /// got anything, so the router may try another deployment: an `UpstreamError`, an
    /// `UpstreamStatus` (a non-2xx answer) or a `GatewayError`.
    func open() async throws -> Opening {
        let provider = self.provider
        let upstreamRequest = plan.upstream
        let logger = self.logger
        ticket.markSent()
        let upstream: UpstreamResponse
        do {
            upstream = try await untilSignalled([client, stop]) { try await provider.send(upstreamRequest, logger: logger) }
        } catch {
            if stop.hasFired { return .stopped }
            throw error
        }
        switch upstream.body {
        case .complete(let body) where !(200..<300).contains(upstream.status):
            throw UpstreamStatus(status: upstream.status, body: body, headers: upstream.headers)
        case .complete(let bytes):
            return .complete(try parseObject(bytes))
        case .events(let events):
            // The first event is awaited before the status is sent: an upstream that fails before
            // producing anything gets an honest HTTP error (or another deployment), not a 200 with
            // an error inside.
            do {
                let first = try await untilSignalled([client, stop]) { try await events.next() }
                return .events(events, first: first)
            } catch {
                events.cancel()
                if stop.hasFired { return .stopped }
                throw error
            }
        }
    }

    /// The answer to the client from what `open` got, along one of the four paths.
    func respond(_ opening: Opening) async throws -> Response {
        switch (inference.stream, opening) {
        case (_, .stopped):
            return await stoppedBeforeOutput()

        case (false, .complete(var object)):
            try await settleWhole(object)
            plan.identity.stamp(&object, endpoint: endpoint)
            return Relay.json(object)

        case (false, .events(let events, let first)):
            return Relay.json(try await aggregate(events, first: first))

        case (true, .complete(let object)):
            try await settleWhole(object)
            let chunks = StreamSynthesizer.chunks(
                from: object, endpoint: endpoint, identity: plan.identity, includeUsage: inference.includeUsage)
            return Relay.eventStream { writer in
                for chunk in chunks { try await writer.write(ByteBuffer(bytes: SSE.event(chunk))) }
                try await writer.write(ByteBuffer(bytes: SSE.done))
            }

        case (true, .events(let events, let first)):
            let exchange = self
            return Relay.eventStream { writer in
                try await exchange.pipe(events, first: first, into: &writer)
            }
        }
    }

    private func parseObject(_ bytes: [UInt8]) throws -> JSONObject {
        guard case .object(let object) = try? JSONValue.parse(bytes) else {
            throw GatewayError.upstreamBroken(providerName, "its answer is not a JSON object")
        }
        return object
    }

    private func settleWhole(_ object: JSONObject) async throws {
        let bytes = OutputMeasure.bytes(ofResponse: object)
        ticket.record(usage: Usage(object["usage"]), outputChunks: 0, outputBytes: bytes)
        let reason = object["choices"]?.arrayValue?.first?["finish_reason"]?.stringValue ?? "stop"
        await ticket.settle(.init(status: .completed, reason: EndReason(rawValue: reason), httpStatus: 200, charge: true))
    }

    /// Stopped before the upstream produced anything: nothing is charged and the client gets an
    /// empty, cleanly finished answer (a stream of one finish chunk and `[DONE]`).
    private func stoppedBeforeOutput() async -> Response {
        await ticket.settle(.init(status: .cancelled, reason: .cancelled, httpStatus: 200, charge: false))
        let usage = Usage(promptTokens: 0, completionTokens: 0)
        if inference.stream {
            let relay = StreamRelay(identity: plan.identity, endpoint: endpoint, clientWantsUsage: inference.includeUsage)
            let chunks = relay.cancellationChunks(usage: usage)
            return Relay.eventStream { writer in
                for chunk in chunks { try await writer.write(ByteBuffer(bytes: SSE.event(chunk))) }
                try await writer.write(ByteBuffer(bytes: SSE.done))
            }
        }
        return Relay.json(StreamAggregator(endpoint: endpoint).cancelledResponse(identity: plan.identity, usage: usage))
    }

    private func aggregate(_ events: UpstreamEvents, first: [UInt8]?) async throws -> JSONObject {
        let endpoint = self.endpoint
        let ticket = self.ticket
        let providerName = self.providerName
        let stop = self.stop
        let aggregator: StreamAggregator
        let stopped: Bool
        do {
            (aggregator, stopped) = try await untilSignalled([client, stop]) {
                var aggregator = StreamAggregator(endpoint: endpoint)
                var next = first
                do {
                    while let payload = next {
                        guard case .object(let chunk) = try? JSONValue.parse(payload) else {
                            throw UpstreamError.invalidResponse("a stream event is not a JSON object")
                        }
                        if let error = chunk["error"]?.objectValue {
                            throw GatewayError.upstreamBroken(providerName, error["message"]?.stringValue ?? "error event")
                        }
                        aggregator.add(chunk)
                        ticket.record(
                            usage: aggregator.usage, outputChunks: aggregator.outputChunks,
                            outputBytes: aggregator.outputBytes)
                        next = try await events.next()
                    }
                } catch is CancellationError where stop.hasFired {
                    return (aggregator, true)
                }
                return (aggregator, false)
            }
        } catch {
            events.cancel()
            throw UpstreamFailure.gatewayError(error, provider: providerName)
        }
        if stopped {
            events.cancel()
            let charge = aggregator.outputChunks > 0 || aggregator.usage != nil
            let usage = ticket.billableUsage(charge: charge)
            await ticket.settle(.init(status: .cancelled, reason: .cancelled, httpStatus: 200, charge: charge))
            return aggregator.cancelledResponse(identity: plan.identity, usage: usage)
        }
        await ticket.settle(
            .init(status: .completed, reason: aggregator.finishReason.map(EndReason.init(rawValue:)) ?? .stop, httpStatus: 200, charge: true))
        return aggregator.response(identity: plan.identity)
    }

    /// Streams events to the client as they arrive. Ends with `[DONE]` only when the upstream
    /// finished or the caller stopped it; an upstream failure becomes a final error event, so a client
    /// never mistakes a cut answer for a whole one. Whatever happens, the ticket is settled for what
    /// was relayed.
    func pipe(_ events: UpstreamEvents, first: [UInt8]?, into writer: inout any ResponseBodyWriter) async throws {
        var relay = StreamRelay(identity: plan.identity, endpoint: endpoint, clientWantsUsage: inference.includeUsage)
        let registrations = [client, stop].compactMap { $0?.onFire { events.cancel() } }
        defer { registrations.forEach { $0.cancel() } }
        var next = first
        var finished = first == nil
        var outcome = BillingTicket.Outcome(status: .completed, reason: .stop, httpStatus: 200, charge: true)
        do {
            loop: while let payload = next {
                let action = try relay.relay(payload)
                ticket.record(usage: relay.usage, outputChunks: relay.outputChunks, outputBytes: relay.outputBytes)
                switch action {
                case .forward(let bytes):
                    try await writer.write(ByteBuffer(bytes: bytes))
                case .drop:
                    break
                case .upstreamError(let error):
                    events.cancel()
                    outcome = .init(status: .failed, reason: .upstreamError, httpStatus: 200, charge: true)
                    try await writer.write(ByteBuffer(bytes: SSE.errorEvent(error)))
                    break loop
                }
                next = try await events.next()
                finished = next == nil
            }
            if finished {
                outcome.reason = relay.finishReason.map(EndReason.init(rawValue:)) ?? .stop
                try await writer.write(ByteBuffer(bytes: SSE.done))
            }
        } catch {
            events.cancel()
            if stop.hasFired && client?.hasFired != true && ticket.interruptedByShutdown {
                // Cut by a shutdown, not finished: an error event, never a clean [DONE].
                outcome = .init(status: .cancelled, reason: .cancelled, httpStatus: 200, charge: true)
                try? await writer.write(ByteBuffer(bytes: SSE.errorEvent(GatewayError.cutByShutdown.errorObject)))
            } else if stop.hasFired && client?.hasFired != true {
                outcome = .init(status: .cancelled, reason: .cancelled, httpStatus: 200, charge: true)
                let usage = ticket.billableUsage(charge: relay.outputChunks > 0 || relay.usage != nil)
                for chunk in relay.cancellationChunks(usage: usage) {
                    try? await writer.write(ByteBuffer(bytes: SSE.event(chunk)))
                }
                try? await writer.write(ByteBuffer(bytes: SSE.done))
            } else if error is CancellationError || client?.hasFired == true {
                outcome = .init(status: .clientClosed, reason: .clientClosed, httpStatus: 200, charge: true)
            } else {
                let failure = UpstreamFailure.gatewayError(error, provider: providerName)
                outcome = .init(status: .failed, reason: EndReason(rawValue: failure.code ?? "upstream_error"), httpStatus: 200, charge: true)
                try? await writer.write(ByteBuffer(bytes: SSE.errorEvent(failure.errorObject)))
            }
        }
        outcome.charge = relay.outputChunks > 0 || relay.usage != nil
        await ticket.settle(outcome)
        if outcome.status == .clientClosed { throw CancellationError() }
    }
}
