// The stack's floor, for bench/run.sh: the least a Hummingbird 2 server relaying through
// AsyncHTTPClient can cost, with none of the gateway's own work (no authentication, limits, holds,
// ledger, JSON, rewriting, watchdogs or request tasks). Each request's body is read whole and sent
// upstream to the same path; a whole answer is read whole and returned with the upstream's status and
// content type; an event stream is relayed piece by piece as it arrives. What the gateway costs above
// this is its own code; what this costs above nginx is the stack's.
//
// Usage: switchyard-bench-floor --port 18083 --upstream http://127.0.0.1:18081 [--max-connections 256]
import AsyncHTTPClient
import Hummingbird
import NIOCore
import NIOPosix

@main
struct BenchFloor {
    static func main() async throws {
        var port = 18083
        var upstream = "http://127.0.0.1:18081"
        var maxConnections = 256
        var arguments = CommandLine.arguments.dropFirst().makeIterator()
        while let argument = arguments.next() {
            switch argument {
            case "--port": port = Int(arguments.next() ?? "") ?? port
            case "--upstream": upstream = arguments.next() ?? upstream
            case "--max-connections": maxConnections = Int(arguments.next() ?? "") ?? maxConnections
            default:
                print("usage: switchyard-bench-floor [--port N] [--upstream URL] [--max-connections N]")
                return
            }
        }
        var configuration = HTTPClient.Configuration()
        configuration.connectionPool = .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: maxConnections)
        let client = HTTPClient(eventLoopGroup: MultiThreadedEventLoopGroup.singleton, configuration: configuration)
        let base = upstream.hasSuffix("/") ? String(upstream.dropLast()) : upstream

        let router = Router()
        router.post("**") { request, context -> Response in
            let body = try await request.body.collect(upTo: 16 * 1024 * 1024)
            var outgoing = HTTPClientRequest(url: base + request.uri.path)
            outgoing.method = .POST
            for field in request.headers where ![.connection, .contentLength, .transferEncoding].contains(field.name) {
                outgoing.headers.add(name: field.name.rawName, value: field.value)
            }
            outgoing.body = .bytes(body)
            let answer = try await client.execute(outgoing, timeout: .seconds(60))
            var headers = HTTPFields()
            if let type = answer.headers.first(name: "content-type") { headers[.contentType] = type }
            let status = HTTPResponse.Status(code: Int(answer.status.code))
            if headers[.contentType]?.hasPrefix("text/event-stream") == true {
                return Response(status: status, headers: headers, body: ResponseBody { writer in
                    for try await piece in answer.body { try await writer.write(piece) }
                    try await writer.finish(nil)
                })
            }
            let whole = try await answer.body.collect(upTo: 64 * 1024 * 1024)
            return Response(status: status, headers: headers, body: .init(byteBuffer: whole))
        }
        // Ready when Hummingbird logs "Server started and listening" (what run.sh waits for).
        let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: port)))
        try await app.runService()
        try await client.shutdown()
    }
}
