import Foundation
import NIOCore
@testable import Pipeline
@testable import RelayCore
@testable import RelayRules

/// Actions as one readable line each, so a test states the expected
/// outcome of an event as a short list a reader can check by eye.
enum ActionTranscript {
    /// The wall time tests hand to events that may start another node's stream.
    static let wall = Date(timeIntervalSince1970: 1_800_000_000)

    /// Logs, webhook events and streamers' demand messages only when asked for.
    static func lines(_ actions: [RelayAction], logs: Bool = false, events: Bool = false, demand: Bool = false) -> [String] {
        actions.compactMap { action in
            switch action {
            case .control(let viewer, let text): return "\(viewer) ← \(summary(of: text))"
            case .streamEnded(let viewer, _, let text): return "\(viewer) ← \(summary(of: text))"
            case .finish(let viewer): return "finish \(viewer)"
            case .deliver(let frame, let fanOut, _):
                return "deliver \(frame.streamID)#\(frame.seq) → " + fanOut.targets.map { "\($0.viewer):\($0.rendition.description)\($0.maxFPS.map { "@\($0)fps" } ?? "")" }.sorted().joined(separator: ",")
            case .closeSession(let session, let reason): return "close session \(session.id) \(reason.rawValue)"
            case .tellStreamer(let session, let text): return demand ? "session \(session.id) ← \(demandSummary(text))" : nil
            case .viewerLeft(let viewer, let reason, let remaining): return "left \(viewer) \(reason.rawValue), \(remaining) remain"
            case .cluster(let notice):
                switch notice {
                case .streamConnected(let id, let started): return "cluster: connected \(id)\(started ? " started" : "")"
                case .streamStarted(let id): return "cluster: started \(id)"
                case .streamEnded(let id, let reason): return "cluster: ended \(id) \(reason.rawValue)"
                case .frameAccepted(let frame): return "cluster: frame \(frame.streamID)#\(frame.seq)"
                case .interestChanged: return "cluster: interest"
                case .streamHealth(let id, let event): return "cluster: health \(id) \(event.kind) \(event.state)"
                case .demand(let id, let needs): return demand ? "cluster: \(id) \(demandSummary(needs.message))" : nil
                }
            case .metric(let event):
                switch event {
                case .frameAccepted(let stream): return "metric: frame \(stream)"
                case .streamEnded(let id): return "metric: ended \(id)"
                case .viewerConnected: return "metric: viewer"
                case .streamHealth(let kind, let state): return "metric: health \(kind) \(state)"
                }
            case .log(let level, let message, _): return logs ? "log \(level): \(message)" : nil
            case .event(let event): return events ? "event: \(event.type) \(eventSubject(event))" : nil
            }
        }
    }

    static func eventSubject(_ event: RelayEvent) -> String {
        switch event {
        case .streamStarted(let stream): stream
        case .streamEnded(let stream, let reason, _): "\(stream) \(reason.rawValue)"
        case .streamIdle(let stream, _): stream
        case .viewerDropped(let viewer, let reason): "\(viewer) \(reason.rawValue)"
        case .streamHealth(let stream, let event): "\(stream) \(event.kind) \(event.state)"
        }
    }

    /// "demand watched 320x180 @5fps", "demand unwatched", "demand watched any size, every frame".
    static func demandSummary(_ text: String) -> String {
        guard let json = try? JSONParser.parse(text) else { return text }
        guard json["watched"] == .bool(true) else { return "demand unwatched" }
        let size = json["width"]?.numberValue.map { "\(Int($0))x\(Int(json["height"]?.numberValue ?? 0))" } ?? "any size"
        let rate = json["fps"]?.numberValue.map { "@\($0)fps" } ?? "every frame"
        return "demand watched \(size), \(rate)"
    }

    /// "stream_ended P-1 node_lost" from the message's JSON.
    static func summary(of text: String) -> String {
        guard let json = try? JSONParser.parse(text) else { return text }
        var parts = [json["type"]?.stringValue, json["stream_id"]?.stringValue, json["reason"]?.stringValue,
                     json["kind"]?.stringValue, json["state"]?.stringValue].compactMap { $0 }
        if let active = json["active_streams"]?.arrayValue { parts.append("[" + active.compactMap(\.stringValue).joined(separator: ",") + "]") }
        return parts.joined(separator: " ")
    }

    static func frame(_ stream: String, seq: UInt64) -> Frame {
        Frame(streamID: stream, seq: seq, arrival: .now, payload: .binary(ByteBuffer(bytes: [0xFF, 0xD8, 0xFF, 0xD9])))
    }

    /// A streamer's connection whose commands nobody reads.
    static func session(_ id: UInt64) -> StreamSessionHandle {
        StreamSessionHandle(id: id, remoteAddress: "test", commands: AsyncStream.makeStream(of: StreamSessionHandle.Command.self).continuation)
    }
}
