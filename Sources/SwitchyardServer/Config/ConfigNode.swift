import Foundation
import Yams

/// A YAML node being read into the typed config: knows its dotted path and line so that every
/// error names both, expands `${VAR}` / `${VAR:-default}` from the environment in scalars, and
/// refuses keys it does not know (a typo must not silently fall back to a default).
struct ConfigNode {
    let node: Node
    let path: String
    let environment: [String: String]

    var line: Int? { node.mark.map { $0.line } }

    func error(_ message: String) -> ConfigError {
        ConfigError(key: path, line: line, message: message)
    }

    func child(_ key: String, _ node: Node) -> ConfigNode {
        ConfigNode(node: node, path: path.isEmpty ? key : "\(path).\(key)", environment: environment)
    }

    var isNull: Bool {
        guard case .scalar(let scalar) = node else { return false }
        return scalar.style == .plain && ["", "~", "null", "Null", "NULL"].contains(scalar.string)
    }

    /// The mapping's entries, in file order, after checking every key is one of `allowed`.
    func mapping(allowed: [String]? = nil) throws(ConfigError) -> [(key: String, value: ConfigNode)] {
        guard case .mapping(let mapping) = node else { throw error("expected a mapping") }
        var entries: [(key: String, value: ConfigNode)] = []
        for (keyNode, valueNode) in mapping {
            guard let key = keyNode.scalar?.string else { throw error("keys must be plain strings") }
            let entry = child(key, valueNode)
            if let allowed, !allowed.contains(key) {
                throw entry.error("unknown key (expected one of: \(allowed.joined(separator: ", ")))")
            }
            entries.append((key, entry))
        }
        return entries
    }

    /// Entries of a mapping whose keys are checked; absent or null values are left out.
    func fields(_ allowed: [String]) throws(ConfigError) -> [String: ConfigNode] {
        var fields: [String: ConfigNode] = [:]
        for (key, value) in try mapping(allowed: allowed) where !value.isNull { fields[key] = value }
        return fields
    }

    func sequence() throws(ConfigError) -> [ConfigNode] {
        guard case .sequence(let sequence) = node else { throw error("expected a list") }
        return sequence.enumerated().map { index, element in
            ConfigNode(node: element, path: "\(path)[\(index)]", environment: environment)
        }
    }

    func string() throws(ConfigError) -> String {
        guard case .scalar(let scalar) = node else { throw error("expected a string") }
        return try expand(scalar.string)
    }

    /// A string that may expand to nothing (an unset variable): `nil` then.
    func optionalString() throws(ConfigError) -> String? {
        let value = try string()
        return value.isEmpty ? nil : value
    }

    func int(in range: ClosedRange<Int>) throws(ConfigError) -> Int {
        let text = try string()
        guard let value = Int(text.replacingOccurrences(of: "_", with: "")), range.contains(value) else {
            throw error("expected an integer from \(range.lowerBound) to \(range.upperBound), got '\(text)'")
        }
        return value
    }

    func bool() throws(ConfigError) -> Bool {
        switch try string().lowercased() {
        case "true", "yes", "on": return true
        case "false", "no", "off": return false
        default: throw error("expected true or false")
        }
    }

    /// A duration: a number of seconds (`30`, `0.5`) or a number with a unit (`250ms`, `30s`, `2m`, `1h`).
    func duration() throws(ConfigError) -> Duration {
        let text = try string().trimmingCharacters(in: .whitespaces)
        let units: [(suffix: String, seconds: Double)] = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600)]
        var number = Substring(text)
        var scale = 1.0
        for unit in units where text.hasSuffix(unit.suffix) {
            number = text.dropLast(unit.suffix.count)
            scale = unit.seconds
            break
        }
        guard let value = Double(number), value >= 0, value.isFinite else {
            throw error("expected a duration such as 30s, 250ms or 2m, got '\(text)'")
        }
        return .milliseconds(Int64((value * scale * 1000).rounded()))
    }

    func stringList() throws(ConfigError) -> [String] {
        var values: [String] = []
        for element in try sequence() { values.append(try element.string()) }
        return values
    }

    func stringMap() throws(ConfigError) -> [String: String] {
        var values: [String: String] = [:]
        for (key, value) in try mapping() { values[key] = try value.string() }
        return values
    }

    /// `${NAME}` is the variable's value (empty when unset); `${NAME:-fallback}` uses the fallback
    /// when unset or empty; `$$` is a literal `$`.
    func expand(_ text: String) throws(ConfigError) -> String {
        guard text.contains("$") else { return text }
        var result = ""
        var rest = Substring(text)
        while let dollar = rest.firstIndex(of: "$") {
            result += rest[..<dollar]
            let after = rest[rest.index(after: dollar)...]
            if after.hasPrefix("$") {
                result += "$"
                rest = after.dropFirst()
                continue
            }
            guard after.hasPrefix("{"), let close = after.firstIndex(of: "}") else {
                result += "$"
                rest = after
                continue
            }
            let reference = after[after.index(after: after.startIndex)..<close]
            let parts = reference.split(separator: ":-", maxSplits: 1, omittingEmptySubsequences: false)
            let name = String(parts[0])
            guard !name.isEmpty, name.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" }) else {
                throw error("invalid environment reference '${\(reference)}'")
            }
            let value = environment[name] ?? ""
            result += value.isEmpty && parts.count == 2 ? String(parts[1]) : value
            rest = after[after.index(after: close)...]
        }
        return result + rest
    }
}
