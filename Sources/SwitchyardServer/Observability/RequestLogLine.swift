import Hummingbird
import Logging
import SwitchyardCore

/// The one structured line each request leaves in the log at `info` (probes at `debug`). Ids, counts,
/// money and timings; the path with keys masked; never a body, a key or an upstream's message.
struct RequestLogLine {
    let request: Request
    let status: HTTPResponse.Status
    let id: String
    let duration: Duration
    let snapshot: RequestRecord.Snapshot

    init(request: Request, status: HTTPResponse.Status, record: RequestRecord) {
        self.request = request
        self.status = status
        self.id = record.id
        self.duration = .now - record.startedAt
        self.snapshot = record.snapshot
    }

    /// Why the request ended: the ledger's end reason, or the refusal's error code.
    var endReason: String? {
        if let report = snapshot.report { return report.settlement.endReason.rawValue }
        guard let error = snapshot.error else { return nil }
        return EndReason(rawValue: error.code ?? error.type).rawValue
    }

    var metadata: Logger.Metadata {
        // Sized once for every field it can get: no rehashing while it fills.
        var fields = Logger.Metadata(minimumCapacity: 28)
        fields["request_id"] = .string(id)
        fields["method"] = .string(request.method.rawValue)
        fields["path"] = .string(LogSafe.target(path: request.uri.path, query: request.uri.query))
        fields["status"] = .stringConvertible(Int(status.code))
        fields["duration_ms"] = .stringConvertible(Self.millis(duration))
        if let admission = snapshot.admission {
            fields["account"] = .string(admission.accountID)
            fields["key_id"] = .string(admission.keyID)
            if let endUser = admission.endUser { fields["end_user"] = .string(LogSafe.text(endUser, limit: 128)) }
            fields["model"] = .string(admission.model)
            fields["endpoint"] = .string(admission.endpoint.name)
            fields["api"] = .string(admission.api)
            fields["stream"] = .stringConvertible(admission.stream)
        }
        if let endReason { fields["end_reason"] = .string(endReason) }
        if let report = snapshot.report {
            let settlement = report.settlement
            fields["response_id"] = .string(settlement.requestID)
            fields["deployment"] = .string(report.deployment)
            fields["outcome"] = .string(settlement.status.rawValue)
            fields["prompt_tokens"] = .stringConvertible(settlement.promptTokens)
            fields["completion_tokens"] = .stringConvertible(settlement.completionTokens)
            fields["usage_source"] = .string(settlement.usageSource.rawValue)
            fields["cost"] = .string((snapshot.captured ?? .zero).description)
            fields["hold"] = .string(report.open.hold.description)
            if let overhead = report.overhead { fields["overhead_ms"] = .stringConvertible(Self.millis(overhead)) }
            // Only when a provider had to get ready (a managed engine loading): most requests have none.
            if report.timings.load > .zero { fields["load_ms"] = .stringConvertible(Self.millis(report.timings.load)) }
            if let sent = report.sentAt, let first = report.firstOutputAt {
                fields["first_token_ms"] = .stringConvertible(Self.millis(first - sent))
            }
            if let sent = report.sentAt { fields["generation_ms"] = .stringConvertible(Self.millis(report.lastByteAt - sent)) }
            if let attempts = settlement.attempts { fields["attempts"] = .string(LogSafe.text(attempts, limit: 256)) }
        } else if let error = snapshot.error {
            fields["outcome"] = "refused"
            fields["error_type"] = .string(EndReason(rawValue: error.type).rawValue)
        }
        return fields
    }

    /// Milliseconds with microsecond resolution.
    static func millis(_ duration: Duration) -> Double {
        let (seconds, attoseconds) = duration.components
        let micros = seconds * 1_000_000 + attoseconds / 1_000_000_000_000
        return Double(micros) / 1000
    }
}
