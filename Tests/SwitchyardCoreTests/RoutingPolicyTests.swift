import SwitchyardCore
import Testing

@Suite struct SlidingWindowTests {
    let t0 = ContinuousClock.now

    @Test func admitsExactlyTheLimitInAnyWindow() {
        var window = SlidingWindow(limit: 3, window: .seconds(60))
        for id in 1...3 {
            #expect(window.fits(1))
            window.add(1, id: UInt64(id), now: t0 + .seconds(id))
        }
        #expect(!window.fits(1))
        #expect(window.remaining == 0)
        // The first admission leaves the window 60 s after it was made, not at a minute boundary.
        #expect(window.wait(for: 1, now: t0 + .seconds(10)) == .seconds(51))
        window.prune(now: t0 + .seconds(60))
        #expect(!window.fits(1))
        window.prune(now: t0 + .seconds(61))
        #expect(window.fits(1) && !window.fits(2))
        #expect(window.resetIn(now: t0 + .seconds(61)) == .seconds(2))
    }

    @Test func removedAndAdjustedAmountsChangeTheTotal() {
        var window = SlidingWindow(limit: 100)
        window.add(40, id: 1, now: t0)
        window.add(40, id: 2, now: t0)
        window.add(10, id: 3, now: t0)
        #expect(!window.fits(20))
        window.adjust(id: 1, to: 5)
        #expect(window.total == 55 && window.fits(45))
        window.remove(id: 2)
        #expect(window.total == 15)
        window.remove(id: 99)
        #expect(window.total == 15)
        // More than the limit alone never fits.
        #expect(window.wait(for: 101, now: t0) == nil)
    }

    @Test func aSteadyOverloadIsCappedAtTheLimitInEveryWindow() {
        var window = SlidingWindow(limit: 10_000, window: .seconds(1))
        var admitted = 0
        var neverAbove = true
        // 20 attempts per millisecond for 5 s, twice the limit of 10 000 per second.
        for step in 0..<100_000 {
            let now = t0 + .milliseconds(step / 20)
            window.prune(now: now)
            if window.fits(1) {
                admitted += 1
                window.add(1, id: UInt64(admitted), now: now)
            }
            neverAbove = neverAbove && window.total <= 10_000
        }
        #expect(neverAbove)
        #expect(admitted == 50_000)
    }
}

@Suite struct CooldownStateTests {
    let policy = RoutingConfig.Cooldown(failures: 3, duration: .seconds(10))
    let t0 = ContinuousClock.now

    @Test func coolsAfterNFailuresInARowAndProbesOnceAfterwards() {
        var state = CooldownState()
        let step1 = state.recordFailure(now: t0, policy: policy)
        #expect(!step1)
        let step2 = state.recordFailure(now: t0, policy: policy)
        #expect(!step2)
        let step3 = state.claim(now: t0, policy: policy)
        #expect(step3)
        let step4 = state.recordFailure(now: t0, policy: policy)
        #expect(step4)
        let step5 = state.claim(now: t0 + .seconds(9), policy: policy)
        #expect(!step5)
        #expect(state.availableAt(now: t0 + .seconds(9), policy: policy) == t0 + .seconds(10))
        // Half-open: one probe, the others keep skipping it until the probe reports.
        let step6 = state.claim(now: t0 + .seconds(10), policy: policy)
        #expect(step6)
        let step7 = state.claim(now: t0 + .seconds(11), policy: policy)
        #expect(!step7)
        state.recordSuccess()
        let step8 = state.claim(now: t0 + .seconds(11), policy: policy)
        #expect(step8)
        let step9 = state.claim(now: t0 + .seconds(11), policy: policy)
        #expect(step9)
    }

    @Test func aFailedProbeCoolsAgainAtOnce() {
        var state = CooldownState()
        for _ in 0..<3 { _ = state.recordFailure(now: t0, policy: policy) }
        let step10 = state.claim(now: t0 + .seconds(10), policy: policy)
        #expect(step10)
        let step11 = state.recordFailure(now: t0 + .seconds(10), policy: policy)
        #expect(step11)
        let step12 = state.claim(now: t0 + .seconds(19), policy: policy)
        #expect(!step12)
        let step13 = state.claim(now: t0 + .seconds(20), policy: policy)
        #expect(step13)
    }

    @Test func aSuccessResetsTheCountAndRetryAfterKeepsItOut() {
        var state = CooldownState()
        _ = state.recordFailure(now: t0, policy: policy)
        _ = state.recordFailure(now: t0, policy: policy)
        state.recordSuccess()
        let step14 = state.recordFailure(now: t0, policy: policy)
        #expect(!step14)
        let step15 = state.recordFailure(now: t0, policy: policy, retryAfter: .seconds(2))
        #expect(!step15)
        let step16 = state.claim(now: t0 + .seconds(1), policy: policy)
        #expect(!step16)
        let step17 = state.claim(now: t0 + .seconds(2), policy: policy)
        #expect(step17)
    }

    @Test func aProbeThatNeverReportsExpires() {
        var state = CooldownState()
        for _ in 0..<3 { _ = state.recordFailure(now: t0, policy: policy) }
        let step18 = state.claim(now: t0 + .seconds(10), policy: policy)
        #expect(step18)
        let step19 = state.claim(now: t0 + .seconds(19), policy: policy)
        #expect(!step19)
        let step20 = state.claim(now: t0 + .seconds(20), policy: policy)
        #expect(step20)
    }
}

@Suite struct DeploymentOrderTests {
    @Test func lowerPriorityFirstAndWeightsShareTheFirstPlace() {
        let deployments: [ModelConfig.Deployment] = [
            .init(provider: "backup", model: "b", priority: 1, weight: 1000),
            .init(provider: "big", model: "m", priority: 0, weight: 3),
            .init(provider: "small", model: "m", priority: 0, weight: 1),
        ]
        var random = SystemRandomNumberGenerator()
        var bigFirst = 0
        for _ in 0..<4000 {
            let order = DeploymentOrder.ordered(deployments, using: &random)
            #expect(order.count == 3)
            #expect(order.last?.provider == "backup")
            if order.first?.provider == "big" { bigFirst += 1 }
        }
        // Expected 3000 of 4000; ±5σ of a binomial (σ ≈ 27) is about ±140.
        #expect((2860...3140).contains(bigFirst), "big came first \(bigFirst) times of 4000")
    }
}
