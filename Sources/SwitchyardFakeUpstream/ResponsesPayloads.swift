import Foundation
import Hummingbird
import NIOCore

/// The fake as an upstream that speaks OpenAI's Responses API natively (`POST /v1/responses`), for
/// testing the gateway's passthrough: the same words as a chat answer (`w1 w2 …`), whole or as the
/// Responses event stream, with `usage` in Responses' shape (3 of the input tokens cached), and the
/// same scripted failures (`die_after` cuts the stream; `error_event` ends it with `response.failed`).
enum ResponsesPayloads {
    static let cachedTokens = 3

    /// A body shaped like chat for `CompletionPlan`: `input` as one user message.
    static func chatShaped(_ json: [String: Any]) -> [String: Any] {
        var body = json
        let input = json["input"]
        let text: String
        if let string = input as? String {
            text = string
        } else {
            text = (input as? [[String: Any]] ?? []).map { item in
                if let content = item["content"] as? String { return content }
                return (item["content"] as? [[String: Any]] ?? []).compactMap { $0["text"] as? String }.joined(separator: " ")
            }.joined(separator: " ")
        }
        body["messages"] = [["role": "user", "content": text]]
        return body
    }

    static func response(_ plan: CompletionPlan, status: String, output: String) -> String {
        let usage =
            #"{"input_tokens":\#(plan.promptTokens),"input_tokens_details":{"cached_tokens":\#(cachedTokens)},"output_tokens":\#(plan.completionTokens),"output_tokens_details":{"reasoning_tokens":0},"total_tokens":\#(plan.promptTokens + plan.completionTokens)}"#
        return #"{"id":"resp_fake\#(plan.id)","object":"response","created_at":\#(plan.created),"status":"\#(status)","model":\#(JSONText.quoted(plan.model)),"output":\#(output),"usage":\#(status == "in_progress" ? "null" : usage)}"#
    }

    static func message(_ plan: CompletionPlan, text: String, status: String) -> String {
        #"{"id":"msg_fake","type":"message","status":"\#(status)","role":"assistant","content":[{"type":"output_text","text":\#(JSONText.quoted(text)),"annotations":[]}]}"#
    }

    static func wholeBody(_ plan: CompletionPlan) -> String {
        response(plan, status: "completed", output: "[" + message(plan, text: plan.text, status: "completed") + "]")
    }

    static func body(for plan: CompletionPlan, errorEvent: Bool, channel: any Channel) -> ResponseBody {
        ResponseBody { writer in
            var sequence = 0
            func send(_ type: String, _ fields: String) async throws {
                let payload = #"{"type":"\#(type)",\#(fields),"sequence_number":\#(sequence)}"#
                sequence += 1
                try await writer.write(ByteBuffer(string: "event: \(type)\ndata: \(payload)\n\n"))
            }
            try await send("response.created", #""response":\#(response(plan, status: "in_progress", output: "[]"))"#)
            try await send(
                "response.output_item.added", #""output_index":0,"item":\#(message(plan, text: "", status: "in_progress"))"#)
            for index in 0..<plan.tokens {
                if let limit = plan.dieAfter, index >= limit { throw StreamingResponse.dropConnection(channel) }
                if plan.delayMs > 0 { try await Task.sleep(for: .milliseconds(plan.delayMs)) }
                try await send(
                    "response.output_text.delta",
                    #""item_id":"msg_fake","output_index":0,"content_index":0,"delta":\#(JSONText.quoted(plan.piece(index)))"#)
            }
            if plan.dieAfter != nil { throw StreamingResponse.dropConnection(channel) }
            if errorEvent {
                try await send(
                    "response.failed",
                    #""response":{"id":"resp_fake","object":"response","status":"failed","error":{"code":"server_error","message":"fake failure"},"output":[]}"#)
                try await writer.finish(nil)
                return
            }
            try await send(
                "response.output_item.done", #""output_index":0,"item":\#(message(plan, text: plan.text, status: "completed"))"#)
            try await send(
                "response.completed",
                #""response":\#(response(plan, status: "completed", output: "[" + message(plan, text: plan.text, status: "completed") + "]"))"#)
            try await writer.finish(nil)
        }
    }
}
