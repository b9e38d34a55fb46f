import NIOCore
import NIOPosix
import Synchronization

/// A NIO event loop as a task executor: a task that prefers it runs its jobs on the loop's thread.
///
/// A connection's task prefers the loop of its channel (`LoopBoundHTTP1`), and whatever is started
/// while on it (`current`: the request's task, a stream's pump) prefers the same loop. The HTTP client then opens and reuses
/// upstream connections on that loop too (`EventLoopGroup.any()` answers the calling loop), so a
/// relayed chunk goes from the upstream socket to the client's without leaving the thread: no
/// wake-up of Swift's pool to read it, and none of the loop to write it.
public final class LoopExecutor: TaskExecutor, Sendable {
    public let loop: any EventLoop

    private init(loop: any EventLoop) {
        self.loop = loop
    }

    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        let executor = asUnownedTaskExecutor()
        loop.execute { job.runSynchronously(on: executor) }
    }

    /// The executor of `loop`, one per loop for the life of the process.
    public static func of(_ loop: any EventLoop) -> LoopExecutor {
        let key = ObjectIdentifier(loop)
        return executors.withLock { executors in
            if let known = executors[key] { return known }
            let made = LoopExecutor(loop: loop)
            executors[key] = made
            return made
        }
    }

    /// The executor of the loop the caller is running on, if it runs on one (nil elsewhere, so a
    /// task started from there runs on Swift's pool as before).
    public static var current: LoopExecutor? {
        MultiThreadedEventLoopGroup.currentEventLoop.map(of)
    }

    private static let executors = Mutex<[ObjectIdentifier: LoopExecutor]>([:])
}
