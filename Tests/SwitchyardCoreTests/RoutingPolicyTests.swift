import SwitchyardCore
import Testing

@Suite struct SlidingWindowTests {
    @Test func admitsTheLimitInAnyWindowAndCountsEachAdmissionAWindowPastItsSecond() {
        var window = SlidingWindow(limit: 3, window: .seconds(60))
        for second in 1...3 {
            #expect(window.fits(1))
            window.add(1, now: Int64(second) * 1000 + 400)
        }
        #expect(!window.fits(1))
        #expect(window.remaining == 0)
        // The first admission (second 1) counts until a minute after its second ends: 62 s.
        #expect(window.wait(for: 1, now: 10_000) == .seconds(52))
        window.prune(now: 61_999)
        #expect(!window.fits(1))
        window.prune(now: 62_000)
        #expect(window.fits(1) && !window.fits(2))
        #expect(window.resetIn(now: 62_000) == .seconds(2))
        #expect(window.buckets.count == 2)
    }

    @Test func removedAndAdjustedAmountsChangeTheTotal() {
        var window = SlidingWindow(limit: 100)
        window.add(40, now: 0)
        window.add(40, now: 10)
        window.add(10, now: 2_000)
        #expect(!window.fits(20))
        window.adjust(from: 40, to: 5, admittedAt: 10)
        #expect(window.total == 55 && window.fits(45))
        window.remove(40, admittedAt: 900)
        #expect(window.total == 15)
        // A bucket that has left the window is not touched.
        window.remove(10, admittedAt: 500_000)
        #expect(window.total == 15)
        // More than the limit alone never fits.
        #expect(window.wait(for: 101, now: 0) == nil)
    }

    @Test func aSteadyOverloadIsCappedAtTheLimitInEveryWindow() {
        var window = SlidingWindow(limit: 10_000, window: .seconds(1))
        var admitted = 0
        var times: [Int64] = []
        // 20 attempts per millisecond for 5 s, twice the limit of 10 000 per second.
        for step in 0..<100_000 {
            let now = Int64(step / 20)
            window.prune(now: now)
            if window.fits(1) {
                admitted += 1
                times.append(now)
                window.add(1, now: now)
            }
        }
        // Never more than the limit in any second, whatever second (checked at every admission)...
        var oldest = 0
        var neverAbove = true
        for (index, time) in times.enumerated() {
            while times[oldest] <= time - 1000 { oldest += 1 }
            neverAbove = neverAbove && index - oldest + 1 <= 10_000
        }
        #expect(neverAbove)
        // ...and the buckets (16 ms here) cost at most a bucket's worth of each window.
        #expect(admitted <= 50_000 && admitted >= 48_500)
        #expect(window.buckets.count <= 63)
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
