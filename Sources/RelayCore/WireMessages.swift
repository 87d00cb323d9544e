import NIOCore
import Pipeline

/// The JSON control messages of the wire contract, built as text once and
/// shared as `ByteBuffer`s.
package enum WireMessage {
    package static func viewerConnected(viewerID: String, activeStreams: [String]) -> String {
        #"{"type":"viewer_connected","viewer_id":\#(JSONValue.quoted(viewerID)),"active_streams":[\#(activeStreams.map(JSONValue.quoted).joined(separator: ","))]}"#
    }

    package static func streamStarted(_ id: String) -> String {
        #"{"type":"stream_started","stream_id":\#(JSONValue.quoted(id))}"#
    }

    package static func streamEnded(_ id: String, reason: StreamEndReason) -> String {
        #"{"type":"stream_ended","stream_id":\#(JSONValue.quoted(id)),"reason":"\#(reason.rawValue)"}"#
    }

    package static let ping = #"{"type":"ping"}"#

    package static let pong = #"{"type":"pong"}"#

    /// The answer to a viewer's ping: with the relay's clock, from which the
    /// viewer (knowing the round trip) estimates its offset to the relay.
    package static func viewerPong(serverTime: Int64) -> String {
        #"{"type":"pong","server_time":\#(serverTime)}"#
    }

    package static func error(_ reason: String) -> String {
        #"{"type":"error","reason":\#(JSONValue.quoted(reason))}"#
    }
}
