import Synchronization

/// A one-shot event with callbacks: a client went away, or a caller asked to stop a generation.
public final class Signal: Sendable {
    private struct State {
        var fired = false
        var nextToken = 0
        var callbacks: [Int: @Sendable () -> Void] = [:]
    }

    private let state = Mutex(State())

    public init() {}

    public var hasFired: Bool { state.withLock { $0.fired } }

    /// Runs `callback` once when the signal fires (at once if it already has). Cancel the returned
    /// registration when the request ends, so that a long keep-alive connection does not accumulate
    /// callbacks.
    public func onFire(_ callback: @escaping @Sendable () -> Void) -> Registration {
        let token = state.withLock { state -> Int? in
            if state.fired { return nil }
            state.nextToken += 1
            state.callbacks[state.nextToken] = callback
            return state.nextToken
        }
        guard let token else {
            callback()
            return Registration(connection: nil, token: 0)
        }
        return Registration(connection: self, token: token)
    }

    public func fire() {
        let callbacks = state.withLock { state -> [@Sendable () -> Void] in
            guard !state.fired else { return [] }
            state.fired = true
            defer { state.callbacks.removeAll() }
            return Array(state.callbacks.values)
        }
        for callback in callbacks { callback() }
    }

    fileprivate func remove(_ token: Int) {
        _ = state.withLock { $0.callbacks.removeValue(forKey: token) }
    }

    public struct Registration: Sendable {
        fileprivate let connection: Signal?
        fileprivate let token: Int

        public func cancel() {
            connection?.remove(token)
        }
    }
}
