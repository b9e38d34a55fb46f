import Hummingbird
import NIOCore
import ServiceLifecycle

/// Thrown to make Hummingbird abandon the connection instead of completing the response.
struct ConnectionDropped: Error {}

/// Server-sent-event body of a streamed completion, including the scripted failures.
enum StreamingResponse {
    static func body(for plan: CompletionPlan, channel: any Channel, crash: (@Sendable () -> Void)?) -> ResponseBody {
        ResponseBody { writer in
            if plan.emptyStream {
                try await writer.finish(nil)
                return
            }
            // Every event is its own write: Hummingbird flushes each one, so clients see
            // chunks arrive one by one as they would from a real model.
            if let opening = plan.openingChunk {
                try await writer.write(event(opening))
            }
            let count = plan.contentChunkCount
            for index in 0..<count {
                if let crash, let after = plan.crashAfter, index >= after { crash() }
                try await misbehaveIfScripted(plan, sent: index, isLast: false, channel: channel)
                try await pause(plan.delayMs)
                try await writer.write(event(plan.contentChunk(index)))
            }
            try await misbehaveIfScripted(plan, sent: count, isLast: true, channel: channel)
            try await pause(plan.delayMs)
            try await writer.write(event(plan.finishChunk))
            if let usage = plan.usageChunk {
                try await writer.write(event(usage))
            }
            try await writer.write(ByteBuffer(string: "data: [DONE]\n\n"))
            try await writer.finish(nil)
        }
    }

    private static func event(_ json: String) -> ByteBuffer {
        ByteBuffer(string: "data: " + json + "\n\n")
    }

    private static func pause(_ milliseconds: Int) async throws {
        if milliseconds > 0 { try await Task.sleep(for: .milliseconds(milliseconds)) }
    }

    /// `die_after` / `stall_after` trigger once `sent` content chunks are out; a limit beyond
    /// the content still takes effect before the finish chunk, so the stream never completes.
    private static func misbehaveIfScripted(
        _ plan: CompletionPlan,
        sent: Int,
        isLast: Bool,
        channel: any Channel
    ) async throws {
        if let limit = plan.dieAfter, isLast || sent >= limit {
            throw dropConnection(channel)
        }
        if let limit = plan.stallAfter, isLast || sent >= limit {
            await stall(until: channel)
            throw dropConnection(channel)
        }
    }

    /// Closes the socket without completing the HTTP message, like a crashed upstream.
    static func dropConnection(_ channel: any Channel) -> ConnectionDropped {
        channel.close(promise: nil)
        return ConnectionDropped()
    }

    /// Sends nothing for up to a minute, returning early once the peer has gone away
    /// (the connection closes), the server shuts down, or the task is cancelled.
    static func stall(until channel: any Channel) async {
        let (ended, continuation) = AsyncStream<Never>.makeStream()
        channel.closeFuture.whenComplete { _ in continuation.finish() }
        let timer = Task {
            try? await Task.sleep(for: .seconds(60))
            continuation.finish()
        }
        defer { timer.cancel() }
        await withGracefulShutdownHandler {
            for await _ in ended {}
        } onGracefulShutdown: {
            continuation.finish()
        }
    }
}
