import Foundation
import Pipeline
import RelayCore

/// The JSON body of one webhook: `id` (the same on every retry, for a
/// receiver to drop duplicates), `type`, `at` (when it happened, not when
/// it was sent), `node`, and the event's own fields.
struct WebhookPayload: Sendable {
    let id: String
    let type: String
    let body: String

    init(_ event: RelayEvent, node: String, at date: Date = Date(), id: String = UUID().uuidString.lowercased()) {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        var members: [(key: String, value: JSONValue)] = [
            ("id", .string(id)), ("type", .string(event.type)), ("at", .string(formatter.string(from: date))), ("node", .string(node)),
        ]
        switch event {
        case .streamStarted(let stream):
            members.append(("stream_id", .string(stream)))
        case .streamEnded(let stream, let reason, let frames):
            members += [("stream_id", .string(stream)), ("reason", .string(reason.rawValue)), ("frames", .number(Double(frames)))]
        case .streamIdle(let stream, let silent):
            members += [("stream_id", .string(stream)), ("silent_ms", .number(Double(silent.milliseconds)))]
        case .viewerDropped(let viewer, let reason):
            members += [("viewer_id", .string(viewer)), ("reason", .string(reason.rawValue))]
        case .streamHealth(let stream, let health):
            members += [("stream_id", .string(stream))] + WireMessage.healthFields(health)
        }
        self.id = id
        self.type = event.type
        self.body = JSONValue.object(members).jsonText
    }
}
