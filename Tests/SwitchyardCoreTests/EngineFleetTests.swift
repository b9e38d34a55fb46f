import SwitchyardCore
import Testing

/// Every edge of the managed engines' lifecycle, decided by `EngineFleet` alone: no processes, no
/// sleeps; time moves on a `ManualClock`.
@Suite struct EngineFleetTests {
    let clock = ManualClock()

    func fleet(_ specs: [EngineSpec], maxRunning: Int? = nil) -> EngineFleet {
        EngineFleet(specs, maxRunning: maxRunning, now: clock.now)
    }

    func spec(_ name: String, group: String? = nil, idle: Duration? = .seconds(60), maxQueue: Int = 8, abandon: Bool = true)
        -> EngineSpec
    {
        EngineSpec(
            name: name, group: group, startTimeout: .seconds(30), idleTimeout: idle, stopTimeout: .seconds(5),
            maxQueue: maxQueue, abandonUnusedLoad: abandon)
    }

    /// Starts `name` with one request and makes it ready; returns the epoch.
    @discardableResult
    func warm(_ fleet: inout EngineFleet, _ name: String, waiter: EngineWaiterID = 100) -> Int {
        let (admission, actions) = fleet.request(name, waiter: waiter, now: clock.now)
        #expect(admission == .waiting)
        guard case .spawn(_, let epoch)? = actions.first(where: { if case .spawn = $0 { true } else { false } }) else {
            Issue.record("no spawn in \(actions)")
            return 0
        }
        clock.advance(by: .milliseconds(500))
        #expect(fleet.healthy(name, epoch: epoch, now: clock.now) == [.admit(name, [waiter])])
        let began = fleet.begin(name, now: clock.now)
        #expect(began)
        return epoch
    }

    @Test func aRequestForAStoppedEngineStartsItAndLaterOnesJoinTheSameLoadInOrder() {
        var fleet = fleet([spec("a")])
        let (first, actions) = fleet.request("a", waiter: 1, now: clock.now)
        #expect(first == .waiting && actions == [.spawn("a", epoch: 1)])
        #expect(fleet.engines["a"]?.state == .starting)
        let (second, more) = fleet.request("a", waiter: 2, now: clock.now)
        #expect(second == .waiting && more.isEmpty)
        clock.advance(by: .seconds(2))
        #expect(fleet.healthy("a", epoch: 1, now: clock.now) == [.admit("a", [1, 2])])
        #expect(fleet.engines["a"]?.lastLoad == .seconds(2))
        #expect(fleet.engines["a"]?.loads == 1)
        // Warm: admitted at once.
        #expect(fleet.request("a", waiter: 3, now: clock.now).0 == .admitted)
    }

    @Test func aReadyEngineWithNothingInFlightStopsAfterItsIdleTimeoutAndNotBefore() {
        var fleet = fleet([spec("a", idle: .seconds(60))])
        warm(&fleet, "a")
        clock.advance(by: .seconds(120))
        // In flight: not idle, however long.
        #expect(fleet.tick(now: clock.now).isEmpty)
        #expect(fleet.end("a", now: clock.now).isEmpty)
        clock.advance(by: .seconds(59))
        #expect(fleet.tick(now: clock.now).isEmpty)
        #expect(fleet.nextDeadline == clock.now + .seconds(1))
        clock.advance(by: .seconds(1))
        #expect(fleet.tick(now: clock.now) == [.terminate("a", epoch: 1)])
        #expect(fleet.engines["a"]?.state == .stopping)
        // A stop that takes longer than stop_timeout is a kill of the process group.
        clock.advance(by: .seconds(5))
        #expect(fleet.tick(now: clock.now) == [.kill("a", epoch: 1)])
        #expect(fleet.exited("a", epoch: 1, now: clock.now).isEmpty)
        #expect(fleet.engines["a"]?.state == .stopped && fleet.engines["a"]?.crashes == 0)
    }

    @Test func aStartThatTimesOutFailsItsWaitersAndTheNextRequestStartsAfresh() {
        var fleet = fleet([spec("a")])
        _ = fleet.request("a", waiter: 1, now: clock.now)
        _ = fleet.request("a", waiter: 2, now: clock.now)
        clock.advance(by: .seconds(30))
        #expect(fleet.tick(now: clock.now) == [.fail("a", [1, 2], .startTimedOut), .terminate("a", epoch: 1)])
        #expect(fleet.exited("a", epoch: 1, now: clock.now).isEmpty)
        #expect(fleet.engines["a"]?.state == .crashed && fleet.engines["a"]?.crashes == 1)
        // The first failure restarts at once.
        #expect(fleet.request("a", waiter: 3, now: clock.now).1 == [.spawn("a", epoch: 2)])
    }

    @Test func failedStartsBackOffLongerEachTime() {
        #expect(EngineFleet.backoff(failures: 1) == .zero)
        #expect(EngineFleet.backoff(failures: 2) == .seconds(1))
        #expect(EngineFleet.backoff(failures: 4) == .seconds(4))
        #expect(EngineFleet.backoff(failures: 40) == .seconds(60))
        var fleet = fleet([spec("a")])
        _ = fleet.request("a", waiter: 1, now: clock.now)
        #expect(fleet.exited("a", epoch: 1, now: clock.now) == [.fail("a", [1], .exited)])
        _ = fleet.request("a", waiter: 2, now: clock.now)
        #expect(fleet.exited("a", epoch: 2, now: clock.now) == [.fail("a", [2], .exited)])
        // Two failures in a row: a second's pause before the third try, which the next waiter gets.
        let (admission, actions) = fleet.request("a", waiter: 3, now: clock.now)
        #expect(admission == .waiting && actions.isEmpty)
        #expect(fleet.nextDeadline == clock.now + .seconds(1))
        clock.advance(by: .seconds(1))
        #expect(fleet.tick(now: clock.now) == [.spawn("a", epoch: 3)])
    }

    @Test func aCrashWhileServingRestartsOnTheNextRequest() {
        var fleet = fleet([spec("a")])
        warm(&fleet, "a")
        #expect(fleet.exited("a", epoch: 1, now: clock.now).isEmpty)
        #expect(fleet.engines["a"]?.state == .crashed && fleet.engines["a"]?.crashes == 1)
        // The broken request ends later; that changes nothing.
        #expect(fleet.end("a", now: clock.now).isEmpty)
        #expect(fleet.request("a", waiter: 2, now: clock.now) == (.waiting, [.spawn("a", epoch: 2)]))
        // A late event of the old process is ignored.
        #expect(fleet.healthy("a", epoch: 1, now: clock.now).isEmpty)
        #expect(fleet.engines["a"]?.state == .starting)
    }

    @Test func aWaiterWhoLeavesLeavesTheQueueAndTheLastOneAbandonsTheLoad() {
        var fleet = fleet([spec("a")])
        _ = fleet.request("a", waiter: 1, now: clock.now)
        _ = fleet.request("a", waiter: 2, now: clock.now)
        #expect(fleet.cancel("a", waiter: 1, now: clock.now).isEmpty)
        #expect(fleet.engines["a"]?.waiters == [2])
        #expect(fleet.cancel("a", waiter: 2, now: clock.now) == [.terminate("a", epoch: 1)])
    }

    @Test func withoutAbandoningTheLoadGoesOnForTheNextRequest() {
        var fleet = fleet([spec("a", abandon: false)])
        _ = fleet.request("a", waiter: 1, now: clock.now)
        #expect(fleet.cancel("a", waiter: 1, now: clock.now).isEmpty)
        #expect(fleet.engines["a"]?.state == .starting)
    }

    @Test func pastMaxQueueARequestIsRefused() {
        var fleet = fleet([spec("a", maxQueue: 2)])
        _ = fleet.request("a", waiter: 1, now: clock.now)
        _ = fleet.request("a", waiter: 2, now: clock.now)
        #expect(fleet.request("a", waiter: 3, now: clock.now).0 == .refused(.overloaded))
    }

    @Test func aSwapWithinAGroupWaitsForTheRunningEngineToHaveNothingInFlight() {
        var fleet = fleet([spec("a", group: "gpu"), spec("b", group: "gpu")])
        warm(&fleet, "a")
        // b wants the group: nothing happens while a serves, and a takes no new requests meanwhile.
        #expect(fleet.request("b", waiter: 2, now: clock.now) == (.waiting, []))
        clock.advance(by: .milliseconds(1))
        #expect(fleet.request("a", waiter: 3, now: clock.now).0 == .waiting)
        #expect(fleet.end("a", now: clock.now) == [.terminate("a", epoch: 1)])
        #expect(fleet.engines["b"]?.state == .stopped)
        #expect(fleet.exited("a", epoch: 1, now: clock.now) == [.spawn("b", epoch: 1)])
        #expect(fleet.healthy("b", epoch: 1, now: clock.now) == [.admit("b", [2])])
        let began = fleet.begin("b", now: clock.now)
        #expect(began)
        // a's waiter gets its turn once b's request ends.
        #expect(fleet.end("b", now: clock.now) == [.terminate("b", epoch: 1)])
        #expect(fleet.exited("b", epoch: 1, now: clock.now) == [.spawn("a", epoch: 2)])
    }

    @Test func whenTheSwapIsNoLongerWantedTheRunningEngineServesItsWaiters() {
        var fleet = fleet([spec("a", group: "gpu"), spec("b", group: "gpu")])
        warm(&fleet, "a")
        _ = fleet.request("b", waiter: 2, now: clock.now)
        _ = fleet.request("a", waiter: 3, now: clock.now)
        #expect(fleet.cancel("b", waiter: 2, now: clock.now) == [.admit("a", [3])])
    }

    @Test func atMaxRunningTheLeastRecentlyUsedIdleEngineIsStopped() {
        var fleet = fleet([spec("a"), spec("b"), spec("c")], maxRunning: 2)
        warm(&fleet, "a", waiter: 1)
        warm(&fleet, "b", waiter: 2)
        clock.advance(by: .seconds(1))
        _ = fleet.end("b", now: clock.now)
        clock.advance(by: .seconds(1))
        _ = fleet.end("a", now: clock.now)
        // b was used less recently than a.
        #expect(fleet.request("c", waiter: 3, now: clock.now) == (.waiting, [.terminate("b", epoch: 1)]))
        #expect(fleet.exited("b", epoch: 1, now: clock.now) == [.spawn("c", epoch: 1)])
    }

    @Test func atMaxRunningWithEveryEngineBusyAStartWaitsForOneToBeIdle() {
        var fleet = fleet([spec("a"), spec("b")], maxRunning: 1)
        warm(&fleet, "a")
        #expect(fleet.request("b", waiter: 2, now: clock.now) == (.waiting, []))
        #expect(fleet.end("a", now: clock.now) == [.terminate("a", epoch: 1)])
    }

    @Test func anOperatorStartLoadsWithNobodyWaitingAndAStopFailsTheWaiters() {
        var fleet = fleet([spec("a")])
        #expect(fleet.start("a", now: clock.now) == [.spawn("a", epoch: 1)])
        // Not abandoned: the operator wants it.
        #expect(fleet.tick(now: clock.now).isEmpty)
        _ = fleet.request("a", waiter: 1, now: clock.now)
        #expect(fleet.stop("a", now: clock.now) == [.fail("a", [1], .stopped), .terminate("a", epoch: 1)])
    }

    @Test func shutdownFailsEveryWaiterStopsEveryProcessAndStartsNothing() {
        var fleet = fleet([spec("a"), spec("b")])
        warm(&fleet, "a")
        _ = fleet.request("b", waiter: 2, now: clock.now)
        let actions = fleet.shutdown(now: clock.now)
        #expect(actions == [.terminate("a", epoch: 1), .fail("b", [2], .shuttingDown), .terminate("b", epoch: 1)])
        #expect(fleet.request("a", waiter: 3, now: clock.now).0 == .refused(.shuttingDown))
        _ = fleet.exited("a", epoch: 1, now: clock.now)
        #expect(!fleet.allStopped)
        _ = fleet.exited("b", epoch: 1, now: clock.now)
        #expect(fleet.allStopped)
    }

    @Test func aReservationThatNeverBeginsLapsesSoTheEngineCanIdle() {
        var fleet = fleet([spec("a", idle: .seconds(1))])
        _ = fleet.request("a", waiter: 1, now: clock.now)
        _ = fleet.healthy("a", epoch: 1, now: clock.now)
        #expect(fleet.engines["a"]?.busy == 1)
        clock.advance(by: EngineFleet.reservationLifetime)
        #expect(fleet.tick(now: clock.now) == [.terminate("a", epoch: 1)])
    }
}
