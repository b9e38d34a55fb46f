/// A configuration problem, naming the key (as a dotted path) and, when known, the line.
public struct ConfigError: Error, Sendable, CustomStringConvertible {
    public var file: String?
    public var key: String
    public var line: Int?
    public var message: String

    public init(file: String? = nil, key: String, line: Int?, message: String) {
        self.file = file
        self.key = key
        self.line = line
        self.message = message
    }

    public var description: String {
        let place = [file, line.map(String.init)].compactMap { $0 }.joined(separator: ":")
        let key = self.key.isEmpty ? "" : "\(self.key): "
        return place.isEmpty ? "\(key)\(message)" : "\(place): \(key)\(message)"
    }
}
