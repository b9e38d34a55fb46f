import Hummingbird
import Logging
import NIOCore
import SwitchyardCore

/// One attempt at one deployment, and the answer to the client, along one of four paths: whole →
/// whole, stream → whole (assembled), whole → stream (synthesised), stream → stream (relayed chunk by
/// chunk). It performs what the request's `RequestLifecycle` (on the ticket) decides: every way the
/// attempt can end is reported as an event, and the action that comes back says what to write,
/// whether to cancel the upstream, and how the request settles.
/// One attempt at one deployment, as `DeploymentRouter` runs it: `run` answers the client or throws
/// `Exchange.Retry` for the next deployment; `interrupted` answers a request stopped while it waited.
protocol RelayAttempt: Sendable {
    func run() async throws -> Response
    func interrupted(by error: any Error) async throws -> Response
}

/// What every attempt has and does the same way, chat (`Exchange`) or media (`MediaExchange`):
/// getting the provider ready, and saying which lifecycle event an error means.
protocol UpstreamAttempt: RelayAttempt {
    var provider: any Provider { get }
    var ticket: BillingTicket { get }
    var client: Signal? { get }
    var stop: Signal { get }
    var logger: Logger { get }
}

extension UpstreamAttempt {
    var providerName: String { provider.config.name }

    /// Waits for the provider to be ready (a managed engine loading), cut short by a stop or the
    /// client leaving; the wait is the ledger's `load_ms`.
    func prepareProvider() async throws {
        guard provider.prepares else { return }
        let provider = self.provider
        let logger = self.logger
        let load = try await untilSignalled([client, stop]) { try await provider.prepare(logger: logger) }
        if load > .zero { ticket.recordLoad(load) }
    }

    /// The event an error means, whoever raised it: a stop or a departed client first (their
    /// cancellation shows up as the error), else the upstream's failure — a failed attempt while
    /// nothing was sent, a failure of the answer (charged as `charge` says) once the stream began.
    func event(for error: any Error, charge: Bool, committed: Bool = false) -> RequestLifecycle.Event {
        if stop.hasFired { return .stop(ticket.stopCause, charge: charge) }
        if client?.hasFired == true || error is CancellationError { return .clientGone(charge: charge) }
        if !committed, let retry = error as? Exchange.Retry { return .attemptFailed(retry.failure) }
        if !committed, let failure = AttemptFailure(error, provider: providerName) { return .attemptFailed(failure) }
        return .upstreamFailed(UpstreamFailure.gatewayError(error, provider: providerName), charge: charge)
    }
}

struct Exchange: UpstreamAttempt {
    private(set) var plan: RelayPlan
    private(set) var inference: InferenceRequest
    let provider: any Provider
    let ticket: BillingTicket
    let client: Signal?
    let stop: Signal
    let logger: Logger
    /// The upstream answered: its deployment is healthy (routing's cooldowns).
    let answered: @Sendable () -> Void
    /// How often a streaming client waiting for its provider to get ready hears `: loading`.
    let loadingNotice: Duration
    let clock: any GatewayClock

    var endpoint: Endpoint { inference.endpoint }

    /// The attempt failed before the client got anything, and the lifecycle says to try the next
    /// deployment. The router catches it.
    struct Retry: Error {
        var failure: AttemptFailure
    }

    /// What an attempt got from its upstream before anything was sent to the client.
    enum Opening: Sendable {
        /// A whole answer.
        case complete(JSONObject)
        /// A stream and its first event (`nil`: it ended at once).
        case events(UpstreamEvents, first: [UInt8]?)
    }

    /// Prepares the provider, sends the request and waits for the upstream's first sign of a good
    /// answer: a whole body that is a JSON object, or a stream's first event; then answers the client.
    func run() async throws -> Response {
        // A streaming client whose provider must load first gets its stream now, kept alive with
        // comments while it waits (see Exchange+loading.swift).
        if inference.stream, provider.prepares, !provider.isReady { return streamAfterLoading() }
        let opening: Opening
        do {
            opening = try await open()
        } catch {
            return try await perform(ticket.handle(event(for: error, charge: false)))
        }
        _ = ticket.handle(.upstreamAnswered)
        answered()
        return try await respond(opening)
    }

    /// The wait before this attempt was cut short by `error` (a stop, the client leaving).
    func interrupted(by error: any Error) async throws -> Response {
        try await perform(ticket.handle(event(for: error, charge: false)))
    }

    func open(preparing: Bool = true) async throws -> Opening {
        let provider = self.provider
        let upstreamRequest = plan.upstream
        let logger = self.logger
        if preparing { try await prepareProvider() }
        ticket.markSent()
        // Sending and waiting for the first event are one cancellable step (one task group, not two).
        let providerName = self.providerName
        return try await untilSignalled([client, stop]) {
            let upstream = try await provider.send(upstreamRequest, logger: logger)
            switch upstream.body {
            case .complete(let body) where !(200..<300).contains(upstream.status):
                throw UpstreamStatus(status: upstream.status, body: body, headers: upstream.headers)
            case .complete(let bytes):
                guard case .object(let object) = try? JSONValue.parse(bytes) else {
                    throw GatewayError.upstreamBroken(providerName, "its answer is not a JSON object")
                }
                return .complete(object)
            case .events(let events):
                // The first event is awaited before the status is sent: an upstream that fails before
                // producing anything gets an honest HTTP error (or another deployment), not a 200
                // with an error inside.
                do {
                    return .events(events, first: try await events.next())
                } catch {
                    events.cancel()
                    throw error
                }
            }
        }
    }

    /// Performs an action before anything was written to the client (a thrown error or a whole answer).
    private func perform(_ action: RequestLifecycle.Action, aggregated: StreamAggregator? = nil) async throws -> Response {
        switch action {
        case .tryNext(let failure):
            throw Retry(failure: failure)
        case .fail(let error, let outcome):
            await ticket.settle(outcome)
            throw error
        case .finishStopped(let outcome):
            await ticket.settle(outcome)
            return stoppedAnswer(aggregated: aggregated, charge: outcome.charge)
        case .abandon(let outcome):
            await ticket.settle(outcome)
            throw CancellationError()
        case .finish(let outcome), .finishWithError(_, let outcome):
            // Neither comes before output; settle all the same rather than strand the hold.
            await ticket.settle(outcome)
            throw GatewayError.internalError
        case .none, .attempt:
            throw GatewayError.internalError
        }
    }

    /// The answer to the client from what `open` got, along one of the four paths.
    private func respond(_ opening: Opening) async throws -> Response {
        switch (inference.stream, opening) {
        case (false, .complete(var object)):
            try await finishWhole(object)
            plan.identity.stamp(&object, endpoint: endpoint)
            return wholeAnswer(object)

        case (_, .events) where passesThrough && !inference.stream, (_, .complete) where passesThrough && inference.stream:
            // Passed through, the upstream was asked for what the caller asked; it answered otherwise.
            if case .events(let events, _) = opening { events.cancel() }
            let failure = UpstreamFailure.gatewayError(
                GatewayError.upstreamBroken(providerName, "it answered a \(inference.stream ? "stream" : "whole") request the other way"),
                provider: providerName)
            return try await perform(ticket.handle(.upstreamFailed(failure, charge: false)))

        case (false, .events(let events, let first)):
            return try await aggregate(events, first: first)

        case (true, .complete(let object)):
            try await finishWhole(object)
            let chunks = StreamSynthesizer.chunks(
                from: object, endpoint: endpoint, identity: plan.identity, includeUsage: inference.includeUsage)
            let usage = ticket.billableUsage(charge: true)
            let exchange = self
            return Relay.eventStream { writer in try await exchange.writeComposed(chunks, usage: usage, into: &writer) }

        case (true, .events(let events, let first)):
            _ = ticket.handle(.committed)
            // The stream is made now, from the whole request (a Responses stream echoes its fields);
            // what relays it keeps only what relaying needs, not the prompt, for as long as it lasts.
            let stream = makeStream()
            let exchange = forRelaying()
            return Relay.eventStream { writer in
                try await exchange.pipe(events, first: first, stream: stream, into: &writer)
            }
        }
    }

    /// This exchange without the request's content once the answer is being relayed: the body (its
    /// `messages` stay when the engine counts the prompt at the end), the caller's original request
    /// and form, and the upstream body already sent. An agent's request is often 20–200 KB; a
    /// stream can last minutes. What the relay reads (endpoint, dialect, flags, identity) stays.
    func forRelaying() -> Exchange {
        var exchange = self
        exchange.inference = inference.relayed(keepingMessages: countsWithEngine)
        exchange.plan = plan.withoutBody()
        return exchange
    }

    /// A whole answer to a client that asked for one, carrying the `usage` it was billed for: the
    /// upstream's own, or (when it reported none, as engines that only stream do) what the ledger
    /// bills, with `x-switchyard-usage-source` saying which.
    private func wholeAnswer(_ object: JSONObject) -> Response {
        var object = object
        let billed = ticket.billedUsage
        if passesThrough {
            object = PassthroughAnswer.stamped(object, identity: plan.identity)
        } else {
            if endpoint.producesCompletion, object["usage"]?.isNull ?? true { object["usage"] = billed.usage.json }
            object = translated(object, usage: billed.usage)
        }
        var response = Relay.json(object)
        response.add(headers: [("x-switchyard-usage-source", billed.source.rawValue)])
        return response
    }

    /// A whole answer came: meter it and settle, before anything is written.
    func finishWhole(_ object: JSONObject) async throws {
        let reason: String?
        if passesThrough {
            let meter = PassthroughAnswer.meter(object, dialect: inference.dialect)
            ticket.record(usage: meter.usage, outputChunks: 0, outputBytes: meter.outputBytes)
            reason = meter.finishReason
        } else {
            ticket.record(usage: Usage(object["usage"]), outputChunks: 0, outputBytes: OutputMeasure.bytes(ofResponse: object))
            reason = object["choices"]?.arrayValue?.first?["finish_reason"]?.stringValue
        }
        guard case .finish(let outcome) = ticket.handle(.upstreamEnded(finishReason: reason, charge: true)) else { return }
        await ticket.settle(outcome)
    }

    /// An answer stopped before it was complete: a stream of the finish chunk (and usage) and
    /// `[DONE]`, or the cancelled object with what was assembled.
    private func stoppedAnswer(aggregated: StreamAggregator?, charge: Bool) -> Response {
        let usage = ticket.billableUsage(charge: charge)
        if inference.stream {
            var stream = makeStream()
            let bytes = stream.stopped(usage: usage)
            return Relay.eventStream { writer in try await writer.write(ByteBuffer(bytes: bytes)) }
        }
        let aggregator = aggregated ?? StreamAggregator(endpoint: endpoint)
        return Relay.json(translated(aggregator.cancelledResponse(identity: plan.identity, usage: usage), usage: usage))
    }

    /// Assembles a stream into a whole answer for a client that did not ask for a stream.
    private func aggregate(_ events: UpstreamEvents, first: [UInt8]?) async throws -> Response {
        // Every ending, a stop or a departure included, comes back as an event with what was
        // assembled so far: a stopped answer carries it, and what was generated is billed.
        let (aggregator, ending) = await untilSignalledOrEnded { [self] in
            var aggregator = StreamAggregator(endpoint: endpoint)
            var next = first
            do {
                while let payload = next {
                    guard case .object(let chunk) = try? JSONValue.parse(payload) else {
                        throw UpstreamError.invalidResponse("a stream event is not a JSON object")
                    }
                    if let error = chunk["error"]?.objectValue {
                        return (aggregator, RequestLifecycle.Event.upstreamErrorEvent(error, provider: providerName, charge: false))
                    }
                    aggregator.add(chunk)
                    ticket.record(
                        usage: aggregator.usage, outputChunks: aggregator.outputChunks, outputBytes: aggregator.outputBytes)
                    next = try await events.next()
                }
            } catch {
                return (aggregator, event(for: error, charge: aggregator.outputChunks > 0 || aggregator.usage != nil))
            }
            return (aggregator, .upstreamEnded(finishReason: aggregator.finishReason, charge: true))
        }
        if aggregator.usage == nil, aggregator.outputChunks > 0 {
            await countWithEngine(completion: Self.completionText(of: aggregator.response(identity: plan.identity)))
        }
        let action = ticket.handle(ending)
        if case .finish(let outcome) = action {
            await ticket.settle(outcome)
            return wholeAnswer(aggregator.response(identity: plan.identity))
        }
        events.cancel()
        return try await perform(action, aggregated: aggregator)
    }

    /// Runs `body` so that a stop or the client's departure cancels it (it then reports that as its
    /// ending); the caller's own cancellation does the same.
    private func untilSignalledOrEnded(
        _ body: @escaping @Sendable () async -> (StreamAggregator, RequestLifecycle.Event)
    ) async -> (StreamAggregator, RequestLifecycle.Event) {
        do {
            return try await untilSignalled([client, stop], body)
        } catch {
            return (StreamAggregator(endpoint: endpoint), event(for: error, charge: false))
        }
    }

    /// Streams events to the client as they arrive. Ends with `[DONE]` only when the upstream
    /// finished or the caller stopped it; an upstream failure becomes a final error event, so a client
    /// never mistakes a cut answer for a whole one. Whatever happens, the request is settled for what
    /// was relayed.
    func pipe(
        _ events: UpstreamEvents, first: [UInt8]?, stream: any AnswerStream, into writer: inout any ResponseBodyWriter
    ) async throws {
        var relay = stream
        relay.collectsText = countsWithEngine
        let registrations = [client, stop].compactMap { $0?.onFire { events.cancel() } }
        defer { registrations.forEach { $0.cancel() } }
        var charge: Bool { relay.outputChunks > 0 || relay.usage != nil }
        var next = first
        var ending: RequestLifecycle.Event?
        do {
            while let payload = next {
                let step = try relay.relay(payload)
                ticket.record(usage: relay.usage, outputChunks: relay.outputChunks, outputBytes: relay.outputBytes)
                switch step {
                case .forward(let bytes):
                    try await writer.write(ByteBuffer(bytes: bytes))
                case .drop:
                    break
                case .upstreamError(let error):
                    ending = .upstreamErrorEvent(error, provider: providerName, charge: charge)
                }
                if ending != nil { break }
                next = try await events.next()
            }
        } catch {
            ending = event(for: error, charge: charge, committed: true)
        }
        if charge, relay.usage == nil { await countWithEngine(completion: relay.relayedText) }
        let action = ticket.handle(ending ?? .upstreamEnded(finishReason: relay.finishReason, charge: charge))
        switch action {
        case .finish(let outcome):
            let ending = relay.finished(usage: endingUsage(relay, charge: outcome.charge))
            if !ending.isEmpty { try? await writer.write(ByteBuffer(bytes: ending)) }
            await ticket.settle(outcome)
        case .finishStopped(let outcome):
            events.cancel()
            try? await writer.write(ByteBuffer(bytes: relay.stopped(usage: endingUsage(relay, charge: outcome.charge))))
            await ticket.settle(outcome)
        case .finishWithError(let error, let outcome):
            events.cancel()
            try? await writer.write(ByteBuffer(bytes: relay.failed(error, usage: endingUsage(relay, charge: outcome.charge))))
            await ticket.settle(outcome)
        case .abandon(let outcome), .fail(_, let outcome):
            events.cancel()
            await ticket.settle(outcome)
            throw CancellationError()
        case .none, .attempt, .tryNext:
            events.cancel()
        }
    }
}
