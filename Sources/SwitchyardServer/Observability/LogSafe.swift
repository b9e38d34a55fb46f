/// Turns what a caller sent into text that may be logged: keys masked, control characters escaped,
/// length bounded. Keys travel in URLs (`/llm_api/{openid}/…`, `?openid=…`), so a path is never
/// logged or labelled as it arrived.
enum LogSafe {
    static let mask = "***"
    /// Query parameters whose values are keys.
    static let secretParameters: Set<String> = ["openid", "key", "api_key", "token", "access_token"]

    /// The path (and query) with every key masked: the `{openid}` segment of `/llm_api/…`, any
    /// segment or query value that looks like a key (`sk-…`), and the values of `openid=`/`key=`….
    static func target(path: String, query: String?) -> String {
        var segments = path.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        for index in segments.indices where looksLikeKey(segments[index]) {
            segments[index] = mask
        }
        // "", "llm_api", openid, …; `suspend_current_generate` is a route, not a key.
        if segments.count > 2 && segments[1] == "llm_api" && segments[2] != "suspend_current_generate" && !segments[2].isEmpty {
            segments[2] = mask
        }
        var target = segments.joined(separator: "/")
        if let query, !query.isEmpty {
            let pairs = query.split(separator: "&", omittingEmptySubsequences: false).map { pair -> String in
                let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                let name = String(parts[0])
                guard parts.count == 2 else { return name }
                let value = String(parts[1])
                let secret = secretParameters.contains(name.lowercased()) || looksLikeKey(value)
                return name + "=" + (secret ? mask : value)
            }
            target += "?" + pairs.joined(separator: "&")
        }
        return text(target, limit: 512)
    }

    /// `sk-…` (possibly percent-encoded, `sk%2D…`), the shape of every key the gateway issues and of
    /// most providers' keys.
    static func looksLikeKey(_ text: String) -> Bool {
        let lower = text.prefix(5).lowercased()
        return lower.hasPrefix("sk-") || lower.hasPrefix("sk%2d") || lower.hasPrefix("sk_")
    }

    /// Control characters and backslashes escaped, at most `limit` characters (then `…`), so that a
    /// value cannot break a text log line or forge another.
    static func text(_ text: String, limit: Int = 256) -> String {
        // Most values are short printable ASCII: nothing to do.
        if text.utf8.count <= limit
            && text.utf8.allSatisfy({ $0 >= 0x20 && $0 < 0x7F && $0 != UInt8(ascii: "\\") })
        {
            return text
        }
        var out = ""
        var count = 0
        for scalar in text.unicodeScalars {
            guard count < limit else {
                out += "…"
                break
            }
            count += 1
            switch scalar {
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20 || (0x7F...0x9F).contains(scalar.value) || scalar.value == 0x2028
                || scalar.value == 0x2029:
                out += "\\u{\(String(scalar.value, radix: 16))}"
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out
    }
}
