#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import Logging

/// One engine process: spawned in a process group of its own (so a stop reaches every process the
/// engine started), its output read line by line into the log at debug, its exit awaited on a
/// thread of its own.
struct EngineProcess: Sendable {
    let pid: pid_t

    enum SpawnError: Error, CustomStringConvertible {
        case failed(Int32, String)
        var description: String {
            switch self {
            case .failed(let code, let program): "cannot start \(program): \(String(cString: strerror(code)))"
            }
        }
    }

    /// The program that makes a child die with the gateway (`PR_SET_PDEATHSIG`), if installed.
    static let deathSignalWrapper: String? = ["/usr/bin/setpriv", "/bin/setpriv"].first {
        FileManager.default.isExecutableFile(atPath: $0)
    }

    /// The full argument list: through `setpriv --pdeathsig KILL` when it exists, so that the kernel
    /// kills the engine even when the gateway is killed with SIGKILL and cannot stop it.
    static func commandLine(_ arguments: [String]) -> [String] {
        guard let wrapper = deathSignalWrapper else { return arguments }
        return [wrapper, "--pdeathsig", "KILL", "--"] + arguments
    }

    /// Spawns `arguments` (searched in `PATH`) with `environment`, stdin from /dev/null, stdout and
    /// stderr into one pipe whose read end is returned. Blocking only for the fork and exec; call it
    /// from `SpawnThread`, whose thread outlives every child (the death signal fires when the
    /// spawning *thread* exits).
    static func spawn(_ arguments: [String], environment: [String: String]) throws -> (EngineProcess, Int32) {
        var pipeEnds: [Int32] = [-1, -1]
        // pipe2 is not exported to Swift; spawns all happen on one thread, so no other child can
        // inherit these between pipe and fcntl.
        guard pipe(&pipeEnds) == 0 else { throw SpawnError.failed(errno, arguments.first ?? "") }
        let (readEnd, writeEnd) = (pipeEnds[0], pipeEnds[1])
        _ = fcntl(readEnd, F_SETFD, FD_CLOEXEC)
        _ = fcntl(writeEnd, F_SETFD, FD_CLOEXEC)
        defer { close(writeEnd) }

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, writeEnd, 1)
        posix_spawn_file_actions_adddup2(&actions, writeEnd, 2)
        // Nothing else of the gateway's: NIO's sockets are not close-on-exec, and a client connection
        // held open by the engine would never close for the client (nor a listening port be freed).
        closeInheritedDescriptors(&actions)

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        // A group of its own (pgid = its pid); every signal back to defaults and none blocked, because
        // the gateway ignores SIGTERM/SIGINT itself to handle them, and an ignored signal stays ignored
        // across exec.
        var all = sigset_t()
        sigfillset(&all)
        var none = sigset_t()
        sigemptyset(&none)
        posix_spawnattr_setsigdefault(&attributes, &all)
        posix_spawnattr_setsigmask(&attributes, &none)
        posix_spawnattr_setpgroup(&attributes, 0)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK))

        let argv = arguments.map { strdup($0) } + [nil]
        let envp = environment.sorted { $0.key < $1.key }.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        var pid: pid_t = 0
        let result = posix_spawnp(&pid, arguments[0], &actions, &attributes, argv, envp)
        guard result == 0 else {
            close(readEnd)
            throw SpawnError.failed(result, arguments[0])
        }
        return (EngineProcess(pid: pid), readEnd)
    }

    private typealias CloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32

    /// glibc 2.34+ has `posix_spawn_file_actions_addclosefrom_np`, but Swift's Glibc module does not
    /// export it; looked up once.
    private static let closeFrom: CloseFrom? = {
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "posix_spawn_file_actions_addclosefrom_np") else {
            return nil
        }
        return unsafeBitCast(symbol, to: CloseFrom.self)
    }()

    /// Closes every descriptor from 3 up in the child; without `closefrom`, those open now.
    private static func closeInheritedDescriptors(_ actions: inout posix_spawn_file_actions_t) {
        if let closeFrom, closeFrom(&actions, 3) == 0 { return }
        let open = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []
        for fd in open.compactMap(Int32.init) where fd > 2 && fcntl(fd, F_GETFD) != -1 {
            posix_spawn_file_actions_addclose(&actions, fd)
        }
    }

    /// Signals every process of the engine's group.
    func signalGroup(_ signal: Int32) {
        _ = kill(-pid, signal)
    }

    /// Waits for the process to exit (on a thread of its own: `waitpid` blocks), then SIGKILLs what
    /// is left of its group, so no child of the engine outlives it. Returns how it ended.
    func exit() async -> String {
        let pid = self.pid
        return await withCheckedContinuation { continuation in
            Thread.detachNewThread {
                var status: Int32 = 0
                var result: pid_t
                repeat { result = waitpid(pid, &status, 0) } while result == -1 && errno == EINTR
                _ = kill(-pid, SIGKILL)
                let signalled = status & 0x7f
                continuation.resume(
                    returning: signalled == 0 ? "exit code \((status >> 8) & 0xff)" : "signal \(signalled)")
            }
        }
    }

    /// Logs the engine's output line by line at debug until the pipe closes (every process of the
    /// engine gone). Debug only: an engine may print prompts.
    static func forward(output fd: Int32, logger: Logger) {
        Thread.detachNewThread {
            defer { close(fd) }
            var pending: [UInt8] = []
            var buffer = [UInt8](repeating: 0, count: 4096)
            while true {
                let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, 4096) }
                if count < 0 && errno == EINTR { continue }
                guard count > 0 else { break }
                pending += buffer[0..<count]
                while let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
                    logLine(pending[..<newline], logger)
                    pending.removeSubrange(...newline)
                }
                if pending.count > 16_384 {
                    logLine(pending[...], logger)
                    pending.removeAll()
                }
            }
            if !pending.isEmpty { logLine(pending[...], logger) }
        }
    }

    private static func logLine(_ bytes: ArraySlice<UInt8>, _ logger: Logger) {
        let line = String(decoding: bytes, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard !line.isEmpty else { return }
        logger.debug("engine output", metadata: ["line": .string(line)])
    }
}

/// The thread every engine is spawned from. `PR_SET_PDEATHSIG` fires when the thread that spawned
/// the child exits, not the process: a thread of Swift's pool may be retired while the engine runs,
/// which would kill it. This one lives as long as the gateway process.
final class SpawnThread: @unchecked Sendable {
    // Guarded by `condition`; a thread blocked on a condition variable needs a lock, not an actor.
    private let condition = NSCondition()
    private var jobs: [@Sendable () -> Void] = []
    private var started = false

    func run<Value: Sendable>(_ job: @escaping @Sendable () throws -> Value) async throws -> Value {
        try await withCheckedThrowingContinuation { continuation in
            enqueue { continuation.resume(with: Swift.Result { try job() }) }
        }
    }

    private func enqueue(_ job: @escaping @Sendable () -> Void) {
        condition.lock()
        jobs.append(job)
        if !started {
            started = true
            let thread = Thread { [self] in loop() }
            thread.name = "switchyard-engine-spawner"
            thread.start()
        }
        condition.signal()
        condition.unlock()
    }

    private func loop() {
        while true {
            condition.lock()
            while jobs.isEmpty { condition.wait() }
            let job = jobs.removeFirst()
            condition.unlock()
            job()
        }
    }
}
