import Foundation
import Pipeline

/// What nodes tell each other on the control channel (small JSON objects).
public enum ClusterEvent: Equatable, Sendable {
    /// `node` now serves `stream`; a node serving it locally is replaced.
    case claimed(stream: String, node: String, started: Bool)
    /// The stream's first valid frame arrived at `node`.
    case started(stream: String, node: String)
    /// `node`'s stream ended (for `node_lost`, another node said so).
    case ended(stream: String, node: String, reason: StreamEndReason)
    /// `node` began to watch `stream`: its owner sends `node` its latest frame.
    case replayWanted(stream: String, node: String)
    /// A stage on `node` changed `stream`'s health (`since` travels in whole milliseconds).
    case health(stream: String, node: String, event: StageEvent)
    /// `node` measured the clock of `stream`'s camera: add `offsetMs` to a
    /// frame's `timestamp` for its capture time on the relay's clock, so
    /// viewers on every node count a picture's age from capture. (An older
    /// node counts it as a malformed message and ignores it.)
    case clock(stream: String, node: String, offsetMs: Int64)
    /// What `node`'s viewers need of `stream` (its owner merges every node's
    /// and tells the camera); null width, height or fps mean no bound.
    case demand(stream: String, node: String, watched: Bool, width: Int?, height: Int?, fps: Double?)

    public var json: String {
        switch self {
        case .claimed(let s, let n, let started):
            return #"{"type":"claimed","stream":\#(JSONValue.quoted(s)),"node":\#(JSONValue.quoted(n)),"started":\#(started)}"#
        case .started(let s, let n):
            return #"{"type":"started","stream":\#(JSONValue.quoted(s)),"node":\#(JSONValue.quoted(n))}"#
        case .ended(let s, let n, let reason):
            return #"{"type":"ended","stream":\#(JSONValue.quoted(s)),"node":\#(JSONValue.quoted(n)),"reason":"\#(reason.rawValue)"}"#
        case .replayWanted(let s, let n):
            return #"{"type":"replay","stream":\#(JSONValue.quoted(s)),"node":\#(JSONValue.quoted(n))}"#
        case .health(let s, let n, let event):
            return JSONValue.object([
                ("type", .string("health")), ("stream", .string(s)), ("node", .string(n)), ("kind", .string(event.kind)),
                ("state", .string(event.state)), ("since", .number(Double(event.since.millisecondsSince1970))),
                ("details", .object(event.details)),
            ]).jsonText
        case .clock(let s, let n, let offset):
            return #"{"type":"clock","stream":\#(JSONValue.quoted(s)),"node":\#(JSONValue.quoted(n)),"offset_ms":\#(offset)}"#
        case .demand(let s, let n, let watched, let width, let height, let fps):
            return JSONValue.object([
                ("type", .string("demand")), ("stream", .string(s)), ("node", .string(n)), ("watched", .bool(watched)),
                ("width", width.map { .number(Double($0)) } ?? .null), ("height", height.map { .number(Double($0)) } ?? .null),
                ("fps", fps.map(JSONValue.number) ?? .null),
            ]).jsonText
        }
    }

    public struct Invalid: Error, CustomStringConvertible {
        public let reason: String
        public var description: String { reason }
    }

    public init(json text: String) throws(Invalid) {
        let value: JSONValue
        do { value = try JSONParser.parse(text) } catch { throw Invalid(reason: "not JSON: \(error)") }
        guard let type = value["type"]?.stringValue else { throw Invalid(reason: "no \"type\"") }
        guard let stream = value["stream"]?.stringValue, StreamID.isValid(Substring(stream)) else { throw Invalid(reason: "\(type): bad or missing \"stream\"") }
        guard let node = value["node"]?.stringValue, NodeID.isValid(node) else { throw Invalid(reason: "\(type): bad or missing \"node\"") }
        switch type {
        case "claimed":
            guard case .bool(let started)? = value["started"] else { throw Invalid(reason: "claimed: \"started\" must be true or false") }
            self = .claimed(stream: stream, node: node, started: started)
        case "started":
            self = .started(stream: stream, node: node)
        case "ended":
            guard let raw = value["reason"]?.stringValue, let reason = StreamEndReason(rawValue: raw) else {
                throw Invalid(reason: "ended: unknown reason")
            }
            self = .ended(stream: stream, node: node, reason: reason)
        case "replay":
            self = .replayWanted(stream: stream, node: node)
        case "health":
            guard let kind = value["kind"]?.stringValue, !kind.isEmpty, kind.count <= 64,
                  let state = value["state"]?.stringValue, !state.isEmpty, state.count <= 64,
                  let since = value["since"]?.numberValue, since.isFinite, since >= 0,
                  case .object(let details)? = value["details"] else {
                throw Invalid(reason: "health: needs kind, state, since (ms) and a details object")
            }
            self = .health(stream: stream, node: node, event: StageEvent(
                kind: kind, state: state, since: Date(timeIntervalSince1970: since / 1000), details: details))
        case "clock":
            guard case .number(let offset)? = value["offset_ms"], offset == offset.rounded(), abs(offset) < 9e15 else {
                throw Invalid(reason: "clock: \"offset_ms\" must be whole milliseconds")
            }
            self = .clock(stream: stream, node: node, offsetMs: Int64(offset))
        case "demand":
            guard case .bool(let watched)? = value["watched"] else { throw Invalid(reason: "demand: \"watched\" must be true or false") }
            func size(_ field: String) throws(Invalid) -> Int? {
                switch value[field] {
                case nil, .null?: return nil
                case .number(let n)? where n >= 0 && n <= 65_535 && n == n.rounded(): return Int(n)
                default: throw Invalid(reason: "demand: \"\(field)\" must be null or whole pixels, 0 to 65535")
                }
            }
            var fps: Double?
            switch value["fps"] {
            case nil, .null?: fps = nil
            case .number(let n)? where n > 0 && n <= 1000: fps = n
            default: throw Invalid(reason: "demand: \"fps\" must be null or a rate above 0")
            }
            self = .demand(stream: stream, node: node, watched: watched, width: try size("width"), height: try size("height"), fps: fps)
        default:
            throw Invalid(reason: "unknown type \"\(type.prefix(32))\"")
        }
    }
}
