import Foundation

extension FakeUpstream {
    /// One request as the fake upstream received it, before any interpretation.
    public struct RecordedRequest: Sendable {
        public let method: String
        public let path: String
        /// Header fields in wire order; names keep the case the client sent.
        public let headers: [(name: String, value: String)]
        public let body: Data

        public init(method: String, path: String, headers: [(name: String, value: String)], body: Data) {
            self.method = method
            self.path = path
            self.headers = headers
            self.body = body
        }

        /// First value of the header `name`, compared case-insensitively as HTTP requires.
        public func header(_ name: String) -> String? {
            let wanted = name.lowercased()
            return headers.first { $0.name.lowercased() == wanted }?.value
        }
    }
}
