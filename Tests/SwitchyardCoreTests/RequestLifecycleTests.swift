import SwitchyardCore
import Testing

/// Every way a request can end, decided by `RequestLifecycle` alone: no sockets, no sleeps; time is
/// passed in (a `ManualClock` where it matters).
@Suite struct RequestLifecycleTests {
    let clock = ManualClock()

    func lifecycle(_ candidates: [String] = ["p/a"], maxAttempts: Int = 4, deadline: Duration = .seconds(30))
        -> RequestLifecycle
    {
        RequestLifecycle(
            candidates: candidates, model: "m",
            policy: .init(
                maxAttempts: maxAttempts, backoff: .milliseconds(100), maxBackoff: .seconds(1),
                deadline: clock.now + deadline))
    }

    /// Starts the next attempt with every candidate available; returns the candidate index and pause.
    func attempt(_ machine: inout RequestLifecycle, cooling: Set<Int> = []) -> (Int, Duration)? {
        var random = SystemRandomNumberGenerator()
        let action = machine.nextAttempt(now: clock.now, using: &random) { index in
            cooling.contains(index) ? .cooling(until: clock.now + .seconds(7)) : .available
        }
        guard case .attempt(let index, let pause) = action else { return nil }
        return (index, pause)
    }

    func failure(_ error: any Error) throws -> AttemptFailure {
        try #require(AttemptFailure(error, provider: "p", unixMillis: clock.unixMillis))
    }

    func http(_ status: Int, _ headers: [(name: String, value: String)] = []) throws -> AttemptFailure {
        try failure(UpstreamStatus(status: status, body: Array(#"{"error":{"message":"no"}}"#.utf8), headers: headers))
    }

    func outcome(_ action: RequestLifecycle.Action) -> RequestOutcome? { action.outcome }

    // MARK: the settlement table (docs/BILLING.md)

    @Test func aFinishedStreamCompletesChargedWithTheUpstreamsFinishReason() throws {
        var machine = lifecycle()
        #expect(attempt(&machine)?.0 == 0)
        _ = machine.handle(.upstreamAnswered)
        _ = machine.handle(.committed)
        #expect(machine.state == .relaying(index: 0))
        let action = machine.handle(.upstreamEnded(finishReason: "length", charge: true))
        guard case .finish(let outcome) = action else { Issue.record("\(action)"); return }
        #expect(outcome == RequestOutcome(status: .completed, reason: .length, httpStatus: 200, charge: true))
        #expect(machine.deployment == "p/a" && machine.attemptsText == nil)
    }

    @Test func aWholeAnswerCompletesAndAMissingFinishReasonIsStop() {
        var machine = lifecycle()
        _ = attempt(&machine)
        _ = machine.handle(.upstreamAnswered)
        #expect(outcome(machine.handle(.upstreamEnded(finishReason: nil, charge: true)))?.reason == .stop)
    }

    @Test func aRefusalBeforeOutputFailsAtOnceAndCostsNothing() throws {
        var machine = lifecycle(["p/a", "p/b"])
        _ = attempt(&machine)
        let action = machine.handle(.attemptFailed(try http(400)))
        guard case .fail(let error, let outcome) = action else { Issue.record("\(action)"); return }
        #expect(error.httpStatus == 400 && error.message == "no")
        #expect(outcome == RequestOutcome(status: .failed, reason: EndReason(rawValue: "error"), httpStatus: 400, charge: false))
        // The one deployment that refused is on the row; no attempts trail for a single try.
        #expect(machine.deployment == "p/a" && machine.attemptsText == nil)
    }

    @Test func anUpstreamFailureAfterOutputEndsTheStreamWithAnErrorEventAndChargesWhatWasRelayed() {
        var machine = lifecycle()
        _ = attempt(&machine)
        _ = machine.handle(.upstreamAnswered)
        _ = machine.handle(.committed)
        let action = machine.handle(.upstreamFailed(.upstreamTimeout("p", "no data between chunks"), charge: true))
        guard case .finishWithError(let event, let outcome) = action else { Issue.record("\(action)"); return }
        #expect(event["code"]?.stringValue == "upstream_timeout")
        #expect(outcome == RequestOutcome(status: .failed, reason: EndReason(rawValue: "upstream_timeout"), httpStatus: 200, charge: true))
    }

    @Test func anErrorEventInTheStreamIsPassedOnAndFailsTheRequest() {
        var machine = lifecycle()
        _ = attempt(&machine)
        _ = machine.handle(.committed)
        let action = machine.handle(.upstreamErrorEvent(["message": "boom"], provider: "p", charge: true))
        guard case .finishWithError(let event, let outcome) = action else { Issue.record("\(action)"); return }
        #expect(event["message"]?.stringValue == "boom")
        #expect(outcome.status == .failed && outcome.reason == .upstreamError && outcome.charge)
    }

    @Test func aClientGoneBeforeOutputIs499AndFreeAfterItIsChargedForWhatItGot() {
        var before = lifecycle()
        _ = attempt(&before)
        guard case .abandon(let early) = before.handle(.clientGone(charge: false)) else { Issue.record(); return }
        #expect(early == RequestOutcome(status: .clientClosed, reason: .clientClosed, httpStatus: 499, charge: false))

        var after = lifecycle()
        _ = attempt(&after)
        _ = after.handle(.committed)
        guard case .abandon(let late) = after.handle(.clientGone(charge: true)) else { Issue.record(); return }
        #expect(late == RequestOutcome(status: .clientClosed, reason: .clientClosed, httpStatus: 200, charge: true))
    }

    @Test func aShutdownCutsAStreamWithAnErrorEventAndBillsWhatWasDelivered() {
        var machine = lifecycle()
        _ = attempt(&machine)
        _ = machine.handle(.committed)
        let action = machine.handle(.stop(.shutdown, charge: true))
        guard case .finishWithError(let event, let outcome) = action else { Issue.record("\(action)"); return }
        #expect(event["code"]?.stringValue == "shutting_down")
        #expect(outcome == RequestOutcome(status: .interrupted, reason: .shutdown, httpStatus: 200, charge: true))
    }

    @Test func aShutdownBeforeOutputEndsTheAnswerCleanlyAndFree() {
        var machine = lifecycle()
        _ = attempt(&machine)
        guard case .finishStopped(let outcome) = machine.handle(.stop(.shutdown, charge: false)) else {
            Issue.record()
            return
        }
        #expect(outcome == RequestOutcome(status: .interrupted, reason: .shutdown, httpStatus: 200, charge: false))
    }

    @Test func aDroppedRequestSettlesAsAbandoned() {
        var machine = lifecycle()
        _ = attempt(&machine)
        _ = machine.handle(.committed)
        #expect(outcome(machine.handle(.abandoned(charge: true))) == .init(status: .failed, reason: .abandoned, httpStatus: 500, charge: true))
    }

    // MARK: stopping: suspend_current_generate and cancel by id are both a caller's stop

    @Test func aCallersStopMidStreamEndsWithTheStoppedAnswerChargedForWhatWasRelayed() {
        var machine = lifecycle()
        _ = attempt(&machine)
        _ = machine.handle(.committed)
        guard case .finishStopped(let outcome) = machine.handle(.stop(.caller, charge: true)) else { Issue.record(); return }
        #expect(outcome == RequestOutcome(status: .cancelled, reason: .cancelled, httpStatus: 200, charge: true))
    }

    @Test func aCallersStopBeforeAnyOutputIsAnEmptyStoppedAnswerAndFree() {
        var machine = lifecycle()
        _ = attempt(&machine)
        guard case .finishStopped(let outcome) = machine.handle(.stop(.caller, charge: false)) else { Issue.record(); return }
        #expect(outcome == RequestOutcome(status: .cancelled, reason: .cancelled, httpStatus: 200, charge: false))
    }

    @Test func aRequestSettlesExactlyOnce() {
        var machine = lifecycle()
        _ = attempt(&machine)
        _ = machine.handle(.committed)
        #expect(outcome(machine.handle(.stop(.caller, charge: true))) != nil)
        for event: RequestLifecycle.Event in [
            .upstreamEnded(finishReason: "stop", charge: true), .clientGone(charge: true), .stop(.shutdown, charge: true),
            .abandoned(charge: true), .upstreamFailed(.internalError, charge: true),
        ] {
            #expect(outcome(machine.handle(event)) == nil)
        }
        #expect(machine.isSettled)
        #expect(attempt(&machine) == nil)
    }

    // MARK: retries and fallbacks before the first byte

    @Test func aRetryableFailureMovesToTheNextCandidateAfterABackoff() throws {
        var machine = lifecycle(["p/a", "p/b"])
        #expect(attempt(&machine)! == (0, .zero))
        guard case .tryNext(let failure) = machine.handle(.attemptFailed(try failure(UpstreamError.connectFailed))) else {
            Issue.record()
            return
        }
        #expect(failure.reason == "connect_error" && failure.countsAgainstDeployment)
        let (index, pause) = try #require(attempt(&machine))
        #expect(index == 1)
        // Half the 100 ms step fixed, half random.
        #expect(pause >= .milliseconds(50) && pause <= .milliseconds(100))
        _ = machine.handle(.upstreamAnswered)
        #expect(outcome(machine.handle(.upstreamEnded(finishReason: "stop", charge: true)))?.status == .completed)
        #expect(machine.deployment == "p/b")
        #expect(machine.attemptsText == "p/a:connect_error,p/b:ok")
    }

    @Test func whenEveryAttemptFailsAnUpstreams429WinsOverALater5xx() throws {
        var machine = lifecycle(["p/a", "p/b"], maxAttempts: 3)
        _ = attempt(&machine)
        _ = machine.handle(.attemptFailed(try http(429, [("retry-after", "2")])))
        _ = attempt(&machine)
        _ = machine.handle(.attemptFailed(try http(503)))
        _ = attempt(&machine)
        _ = machine.handle(.attemptFailed(try http(500)))
        var random = SystemRandomNumberGenerator()
        let action = machine.nextAttempt(now: clock.now, using: &random) { _ in .available }
        guard case .fail(let error, let outcome) = action else { Issue.record("\(action)"); return }
        #expect(error.httpStatus == 429)
        #expect(outcome.status == .failed && !outcome.charge)
        #expect(machine.attemptsText == "p/a:http_429,p/b:http_503,p/a:http_500")
    }

    @Test func aStreamThatBreaksBeforeItsFirstEventIsRetriedButNotAfter() throws {
        var machine = lifecycle(["p/a", "p/b"])
        _ = attempt(&machine)
        let action = machine.handle(.upstreamErrorEvent(["message": "x"], provider: "p", charge: false))
        guard case .tryNext = action else { Issue.record("\(action)"); return }
        _ = attempt(&machine)
        _ = machine.handle(.committed)
        guard case .finishWithError = machine.handle(.attemptFailed(try failure(UpstreamError.closedEarly))) else {
            Issue.record()
            return
        }
    }

    @Test func whenEveryCandidateIsCoolingTheOneBackFirstIsTriedAnyway() {
        var machine = lifecycle(["p/a", "p/b"])
        var random = SystemRandomNumberGenerator()
        let action = machine.nextAttempt(now: clock.now, using: &random) { index in
            .cooling(until: clock.now + .seconds(index == 1 ? 2 : 9))
        }
        guard case .attempt(let index, let pause) = action else { Issue.record("\(action)"); return }
        #expect(index == 1 && pause == .zero)
        _ = machine.handle(.upstreamAnswered)
        #expect(machine.attemptsText == "p/a:cooling,p/b:cooling,p/b:ok")
    }

    @Test func candidatesThatCoolDuringTheRequestEndItWithTheLastFailure() throws {
        var machine = lifecycle(["p/a"])
        _ = attempt(&machine)
        _ = machine.handle(.attemptFailed(try http(500)))
        var random = SystemRandomNumberGenerator()
        let action = machine.nextAttempt(now: clock.now, using: &random) { _ in .cooling(until: clock.now + .seconds(30)) }
        guard case .fail(let error, let outcome) = action else { Issue.record("\(action)"); return }
        #expect(error.httpStatus == 502 && error.code == "upstream_error")
        #expect(outcome.httpStatus == 502 && machine.attemptsText == "p/a:http_500,p/a:cooling")
    }

    @Test func aCoolingCandidateIsSkippedForTheNextOne() {
        var machine = lifecycle(["p/a", "p/b"])
        #expect(attempt(&machine, cooling: [0])?.0 == 1)
    }

    @Test func noAttemptStartsWhoseBackoffWouldPassTheDeadline() throws {
        var machine = lifecycle(["p/a", "p/b"], deadline: .milliseconds(40))
        _ = attempt(&machine)
        _ = machine.handle(.attemptFailed(try failure(UpstreamError.timeout(.firstByte))))
        // The next backoff is at least 50 ms; the deadline is 40 ms away.
        var random = SystemRandomNumberGenerator()
        guard case .fail(let error, _) = machine.nextAttempt(now: clock.now, using: &random, claim: { _ in .available }) else {
            Issue.record()
            return
        }
        #expect(error.httpStatus == 504)
    }

    @Test func maxAttemptsBoundsTheRounds() throws {
        var machine = lifecycle(["p/a"], maxAttempts: 2)
        _ = attempt(&machine)
        _ = machine.handle(.attemptFailed(try http(502)))
        #expect(attempt(&machine)?.0 == 0)
        _ = machine.handle(.attemptFailed(try http(502)))
        #expect(attempt(&machine) == nil)
        #expect(machine.isSettled)
    }
}

@Suite struct SettlementComputationTests {
    let clock = ManualClock()
    let open = LedgerOpen(
        requestID: "r", accountID: "a", keyID: "k", endUser: nil, model: "m", deployment: "p/a",
        hold: Money(micros: 5_000_000), instance: "i", startedAt: 0)

    func settle(_ outcome: RequestOutcome, price: Price, meter: Meter, timings: RequestTimings) -> LedgerSettlement {
        LedgerSettlement(
            open: open, outcome: outcome, meter: meter, timings: timings, end: clock.now, price: price, maxSeconds: 60,
            multiplierPPM: 1_000_000, finishedAt: clock.unixMillis, deployment: nil, attempts: nil)
    }

    @Test func perSecondBillsGenerationOnlyNeverQueueingOrLoading() {
        var timings = RequestTimings(arrivedAt: clock.now)
        clock.advance(by: .milliseconds(300))  // routing, hold
        clock.advance(by: .seconds(4))  // a managed engine loading
        timings.load = .seconds(4)
        timings.sentAt = clock.now
        clock.advance(by: .milliseconds(200))
        timings.firstOutputAt = clock.now
        clock.advance(by: .milliseconds(1_800))
        timings.lastByteAt = clock.now
        var meter = Meter(promptEstimate: 10)
        meter.reported = Usage(promptTokens: 12, completionTokens: 30)
        let settled = settle(
            .init(status: .completed, reason: .stop, httpStatus: 200, charge: true), price: .perSecond(1_000_000_000),
            meter: meter, timings: timings)
        #expect(settled.loadMillis == 4_000 && settled.queueMillis == 300)
        #expect(settled.firstTokenMillis == 200 && settled.generationMillis == 2_000)
        #expect(settled.cost == Money(micros: 2_000_000))  // 2 s at 1.00 per second
        #expect(settled.usageSource == .reported && settled.promptTokens == 12)
    }

    @Test func anUnchargedEndingCostsNothingAndRecordsNoTokens() {
        var meter = Meter(promptEstimate: 10)
        meter.outputChunks = 5
        let settled = settle(
            .init(status: .failed, reason: .upstreamError, httpStatus: 502, charge: false),
            price: .tokens(inputPer1K: 1_000_000, outputPer1K: 1_000_000), meter: meter,
            timings: RequestTimings(arrivedAt: clock.now))
        #expect(settled.cost == .zero && settled.promptTokens == 0 && settled.usageSource == LedgerSettlement.UsageSource.none)
    }

    @Test func withoutReportedUsageWhatWasRelayedIsEstimated() {
        var meter = Meter(promptEstimate: 10)
        meter.outputChunks = 7
        let settled = settle(
            .init(status: .clientClosed, reason: .clientClosed, httpStatus: 200, charge: true),
            price: .tokens(inputPer1K: 1_000_000, outputPer1K: 1_000_000), meter: meter,
            timings: RequestTimings(arrivedAt: clock.now))
        #expect(settled.promptTokens == 10 && settled.completionTokens == 7 && settled.usageSource == .estimated)
        #expect(settled.cost == Money(micros: 17))  // 17 tokens at 0.001 per 1K
    }
}
