import SwitchyardCore

/// Stops requests wherever they run: in this process (`InFlight`) or on another replica sharing the
/// database (`ReplicaBus`: the shared ledger says where a request runs, a NOTIFY carries the stop).
/// Only the owning account can see or stop a request; for anyone else it does not exist.
struct Stops: Sendable {
    let inFlight: InFlight
    let bus: any ReplicaBus

    /// The public model and creation time of a request the account is running on any replica.
    func running(id: String, accountID: String) async throws -> (model: String, created: Int)? {
        if let local = inFlight.running(id: id, accountID: accountID) { return local }
        return try await elsewhere { try await bus.runningElsewhere(id: id, accountID: accountID) }
            .map { ($0.model, $0.created) }
    }

    /// Stops the request if the account runs it anywhere; what it was, or nil.
    func stop(id: String, accountID: String) async throws -> (model: String, created: Int)? {
        if let local = inFlight.running(id: id, accountID: accountID), inFlight.stop(id: id, accountID: accountID) {
            return local
        }
        guard let remote = try await elsewhere({ try await bus.runningElsewhere(id: id, accountID: accountID) }) else {
            return nil
        }
        try await elsewhere { try await bus.publish(.stopRequest(id: id, accountID: accountID)) }
        return (remote.model, remote.created)
    }

    /// Stops every running request of the account's end user on every replica; how many.
    func stop(accountID: String, endUser: String) async throws -> Int {
        let local = inFlight.stop(accountID: accountID, endUser: endUser)
        let remote = try await elsewhere { try await bus.runningElsewhere(accountID: accountID, endUser: endUser) }
        if remote > 0 { try await elsewhere { try await bus.publish(.stopEndUser(accountID: accountID, endUser: endUser)) } }
        return local + remote
    }

    private func elsewhere<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) async throws -> T {
        do {
            return try await answered(within: .seconds(5), body)
        } catch {
            throw GatewayError.databaseUnavailable("reach the request on the other replicas")
        }
    }

    /// What the other replicas ask of this one.
    func apply(_ event: ReplicaEvent) {
        switch event {
        case .stopRequest(let id, let accountID): _ = inFlight.stop(id: id, accountID: accountID)
        case .stopEndUser(let accountID, let endUser): _ = inFlight.stop(accountID: accountID, endUser: endUser)
        default: break
        }
    }
}
