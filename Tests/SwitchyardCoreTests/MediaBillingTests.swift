import Testing

@testable import SwitchyardCore

/// Media prices and the guards around what a caller's bytes may claim.
@Suite struct MediaBillingTests {
    @Test func mediaPricesCountTheirOwnUnits() {
        let images = Price.perImage(["1024x1024/hd": 80_000_000, "1024x1024": 50_000_000, "*": 20_000_000])
        func cost(_ price: Price, _ media: MediaUsage, ppm: Int64 = 1_000_000) -> Money {
            price.cost(promptTokens: 0, completionTokens: 0, generationMillis: 0, multiplierPPM: ppm, media: media)
        }
        #expect(cost(images, MediaUsage(images: 3, imageKey: "1024x1024/hd")) == Money(micros: 240_000))
        #expect(cost(images, MediaUsage(images: 1, imageKey: "1024x1024/standard")) == Money(micros: 50_000))
        #expect(cost(images, MediaUsage(images: 2, imageKey: "256x256/standard")) == Money(micros: 40_000))
        #expect(cost(images, MediaUsage(images: 2, imageKey: "256x256/standard"), ppm: 500_000) == Money(micros: 20_000))
        // 15.00 per 1M characters: 38 characters cost 570 micro-units.
        #expect(cost(.perMillionCharacters(15_000_000_000), MediaUsage(characters: 38)) == Money(micros: 570))
        // 0.0001 per second: 2.534 s cost 253.4 → 253 micro-units (rounded once, half up).
        #expect(cost(.perAudioSecond(100_000), MediaUsage(audioMillis: 2534)) == Money(micros: 253))
        #expect(MediaUsage(audioMillis: 5).units(for: .perAudioSecond(1))?.unit == "audio_ms")
    }

    @Test func absurdDurationsAreUnreadableNotATrap() {
        #expect(AudioDuration.millis(.infinity) == 0)
        #expect(AudioDuration.millis(-3) == 0)
        #expect(AudioDuration.millis(1e30) == Int64(AudioDuration.longest * 1000))
        #expect(AudioDuration.millis(2.5) == 2500)
    }

    @Test func aFieldGivenTwiceIsRefused() {
        #expect(throws: GatewayError.self) {
            try InferenceRequest(endpoint: .speech, bytes: Array(#"{"model":"t","input":"hi","input":"a much longer text"}"#.utf8))
        }
        let form = MultipartForm(parts: [
            .init(name: "model", data: Array("m".utf8)), .init(name: "n", data: Array("1".utf8)),
            .init(name: "n", data: Array("10".utf8)), .init(name: "prompt", data: Array("p".utf8)),
        ])
        #expect(throws: GatewayError.self) {
            try MediaRequest.multipart(
                endpoint: .imageEdits, bytes: form.encoded(boundary: "b"), contentType: "multipart/form-data; boundary=b")
        }
    }
}
