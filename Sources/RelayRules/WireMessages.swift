import Foundation
import NIOCore
import Pipeline

/// The JSON control messages of the wire contract, built as text once and
/// shared as `ByteBuffer`s.
package enum WireMessage {
    static func viewerConnected(viewerID: String, activeStreams: [String]) -> String {
        #"{"type":"viewer_connected","viewer_id":\#(JSONValue.quoted(viewerID)),"active_streams":[\#(activeStreams.map(JSONValue.quoted).joined(separator: ","))]}"#
    }

    static func streamStarted(_ id: String) -> String {
        #"{"type":"stream_started","stream_id":\#(JSONValue.quoted(id))}"#
    }

    package static func streamEnded(_ id: String, reason: StreamEndReason) -> String {
        #"{"type":"stream_ended","stream_id":\#(JSONValue.quoted(id)),"reason":"\#(reason.rawValue)"}"#
    }

    /// `{"type":"stream_health","stream_id","kind","state","since",…details}`.
    package static func streamHealth(_ id: String, _ event: StageEvent) -> String {
        JSONValue.object([("type", .string("stream_health")), ("stream_id", .string(id))] + healthFields(event)).jsonText
    }

    /// The event's own fields, as the API, the wire and the webhooks show them.
    package static func healthFields(_ event: StageEvent) -> [(key: String, value: JSONValue)] {
        [("kind", .string(event.kind)), ("state", .string(event.state)), ("since", .string(event.since.formatted(timeStyle)))]
            + event.details.filter { !["type", "stream_id", "kind", "state", "since"].contains($0.key) }
    }

    /// `2026-12-01T10:26:03.452Z`: the relay's times as the wire and its logs show them,
    /// made without a Foundation formatter object per call.
    package static let timeStyle = Date.ISO8601FormatStyle(includingFractionalSeconds: true)

    /// `text` with `"patient_id"` beside its `"stream_id"`, as the relay
    /// framepipe replaces named streams: for its dashboards (`compat=patient_id`).
    /// Stream ids need no escaping, so the id ends at the next quote.
    package static func namingPatient(_ text: String) -> String {
        let key = #""stream_id":""#
        guard let start = text.range(of: key), let end = text[start.upperBound...].firstIndex(of: "\"") else { return text }
        let id = text[start.upperBound..<end]
        return String(text[..<text.index(after: end)]) + #","patient_id":""# + id + "\"" + text[text.index(after: end)...]
    }

    package static let ping = #"{"type":"ping"}"#

    /// The answer to a viewer's or streamer's ping: with the relay's clock,
    /// from which the client (knowing the round trip) estimates its offset to the relay.
    package static func pong(serverTime: Int64) -> String {
        #"{"type":"pong","server_time":\#(serverTime)}"#
    }

    /// The relay's ping to a streamer: its clock, for the streamer to echo
    /// beside its own in the pong (`StreamerClock`). Still a `ping`: a
    /// streamer that answers with a bare pong keeps working.
    package static func clockPing(serverTime: Int64) -> String {
        #"{"type":"ping","server_time":\#(serverTime)}"#
    }

    /// A credit streamer's answer to one frame message, in the order they
    /// came: taken (passed the pipeline) or not and why, the relay's seq,
    /// the sender's timestamp echoed, when it arrived (`received_at`, relay
    /// clock), its capture time on the relay's clock and the delay since
    /// (`delay_ms`) once the streamer's clock offset is known, and its size.
    package static func streamerAck(seq: UInt64?, taken: Bool, reason: String?, timestamp: Int64?, receivedAt: Int64,
                                     capturedAt: Int64?, bytes: Int) -> String {
        var s = #"{"type":"ack","taken":\#(taken)"#
        if let seq { s += #","seq":\#(seq)"# }
        if let reason { s += #","reason":\#(JSONValue.quoted(reason))"# }
        if let timestamp { s += #","timestamp":\#(timestamp)"# }
        s += #","received_at":\#(receivedAt)"#
        if let capturedAt { s += #","captured_at":\#(capturedAt),"delay_ms":\#(receivedAt - capturedAt)"# }
        return s + #","bytes":\#(bytes)}"#
    }

    package static func error(_ reason: String) -> String {
        #"{"type":"error","reason":\#(JSONValue.quoted(reason))}"#
    }
}
