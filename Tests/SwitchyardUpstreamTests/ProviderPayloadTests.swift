import Foundation
import Logging
import NIOPosix
import SwitchyardCore
import SwitchyardFakeUpstream
import SwitchyardUpstream
import Testing

/// Bodies reach the upstream as they were given: JSON, multipart (fields and files byte for byte) or
/// raw bytes with their content type; providers are made by the factory for their kind.
@Suite(.timeLimit(.minutes(1))) struct ProviderPayloadTests {
    func withProvider(_ body: (any Provider, FakeUpstream) async throws -> Void) async throws {
        let upstream = try await FakeUpstream.start()
        let providers = Providers(
            configs: [.init(name: "fake", kind: .openai, baseURL: upstream.baseURL)],
            eventLoopGroup: MultiThreadedEventLoopGroup.singleton)
        do {
            try await body(try #require(providers["fake"]), upstream)
        } catch {
            await providers.shutdown()
            await upstream.shutdown()
            throw error
        }
        await providers.shutdown()
        await upstream.shutdown()
    }

    @Test func aMultipartBodyArrivesWithItsPartsExactly() async throws {
        try await withProvider { provider, upstream in
            let audio: [UInt8] = [0x52, 0x49, 0x46, 0x46, 0x00, 0xFF, 0x0D, 0x0A, 0x2D, 0x2D]
            let form = MultipartForm(parts: [
                .init(name: "model", data: Array("whisper-1".utf8)),
                .init(name: "file", filename: "a \"b\".wav", contentType: "audio/wav", data: audio),
            ])
            _ = try? await provider.send(
                UpstreamRequest(endpoint: .chatCompletions, payload: .multipart(form), stream: false), logger: Logger(label: "t"))
            let recorded = try #require(upstream.requests.last)
            let contentType = try #require(recorded.header("content-type"))
            let boundary = try #require(MultipartForm.boundary(ofContentType: contentType))
            #expect(try MultipartForm.parse(Array(recorded.body), boundary: boundary) == form)
        }
    }

    @Test func rawBytesKeepTheirContentType() async throws {
        try await withProvider { provider, upstream in
            let bytes: [UInt8] = Array(0...255)
            _ = try? await provider.send(
                UpstreamRequest(endpoint: .embeddings, payload: .bytes(bytes, contentType: "audio/mpeg"), stream: false),
                logger: Logger(label: "t"))
            let recorded = try #require(upstream.requests.last)
            #expect(recorded.header("content-type") == "audio/mpeg")
            #expect(Array(recorded.body) == bytes)
            #expect(recorded.path == "/v1/embeddings")
        }
    }

    @Test func everyConfiguredKindHasAMakerAndAFactoryWithoutOneLeavesItOut() {
        #expect(Set(ProviderFactory.standard.makers.keys) == Set(ProviderConfig.Kind.allCases))
        let providers = Providers(
            configs: [.init(name: "t", kind: .test)], eventLoopGroup: MultiThreadedEventLoopGroup.singleton,
            factory: ProviderFactory(makers: [:]))
        #expect(providers["t"] == nil)
    }
}
