import Foundation
import Logging
import Synchronization
import SwitchyardCore

/// The test model's drawing tasks, in midjourney-proxy's shapes: a submission is accepted at once and
/// its task runs for `tokens × token_delay` (IN_PROGRESS, then SUCCESS with a generated image), or
/// fails when its prompt says `fail`. Offline and deterministic.
extension TestProvider {
    struct TestTask: Sendable {
        var action: String
        var prompt: String
        var submitted: ContinuousClock.Instant
        var submitTime: Int
    }

    static let tasks = Mutex<[String: TestTask]>([:])

    public func task(method: String, path: String, body: [UInt8]?, logger: Logger) async throws -> (status: Int, body: [UInt8]) {
        let parts = path.split(separator: "/").map(String.init)
        if method == "POST", parts.count == 3, parts[0] == "mj", parts[1] == "submit" {
            let request = (try? JSONValue.parse(body ?? []))?.objectValue ?? [:]
            let prompt = request["prompt"]?.stringValue ?? request["content"]?.stringValue ?? ""
            if parts[2] == "imagine" && prompt.isEmpty {
                return (200, Array(#"{"code":4,"description":"prompt is required","result":null,"properties":{}}"#.utf8))
            }
            let id = String(UInt64.random(in: 1_000_000_000_000_000...9_999_999_999_999_999))
            let task = TestTask(
                action: parts[2].uppercased(), prompt: prompt, submitted: .now, submitTime: Int(Date().timeIntervalSince1970 * 1000))
            Self.tasks.withLock { $0[id] = task }
            let answer: JSONObject = [
                "code": 1, "description": "Submit success", "result": .string(id), "properties": .object([:]),
            ]
            return (200, answer.serialized())
        }
        if method == "GET", parts.count == 4, parts[0] == "mj", parts[1] == "task", parts[3] == "fetch" {
            guard let task = Self.tasks.withLock({ $0[parts[2]] }) else {
                return (404, Array(#"{"error":"task not found"}"#.utf8))
            }
            return (200, fetched(parts[2], task).serialized())
        }
        return (404, Array(#"{"error":"not served"}"#.utf8))
    }

    /// The task as `GET /mj/task/ID/fetch` answers it now.
    private func fetched(_ id: String, _ task: TestTask) -> JSONObject {
        let duration = config.test.tokenDelay * max(1, config.test.tokens)
        let elapsed = ContinuousClock.now - task.submitted
        let done = elapsed >= duration
        let failing = task.prompt.contains("fail")
        let progress = done ? 100 : Int(Double(elapsed.millis) / Double(max(1, duration.millis)) * 100)
        var object: JSONObject = [
            "id": .string(id), "action": .string(task.action), "prompt": .string(task.prompt),
            "description": "Submit success", "submitTime": .int(task.submitTime), "startTime": .int(task.submitTime),
            "progress": .string("\(min(progress, 100))%"),
        ]
        switch (done, failing) {
        case (false, _):
            object["status"] = "IN_PROGRESS"
            object["imageUrl"] = ""
            object["failReason"] = ""
        case (true, true):
            object["status"] = "FAILURE"
            object["imageUrl"] = ""
            object["failReason"] = "the test model was asked to fail"
            object["finishTime"] = .int(task.submitTime + Int(duration.millis))
        case (true, false):
            object["status"] = "SUCCESS"
            object["imageUrl"] = .string(Base64.dataURL(TestMedia.png(width: 16, height: 16, seed: id.count), mediaType: "image/png"))
            object["failReason"] = ""
            object["finishTime"] = .int(task.submitTime + Int(duration.millis))
        }
        return object
    }
}
