import Foundation
import Pipeline

/// What a viewer asks for in its socket's query: `streams=a,b`,
/// `format=json|binary`, `quality=auto|full|low`, `flow=push|credit`,
/// `credits=1…8` (with `flow=credit`), `compat=patient_id|none`. Parsed by the upgrade
/// gate, so a bad option is refused with its reason before the upgrade,
/// and by the route, the same way.
public struct ViewerOptions: Sendable, Equatable {
    public var streams: Set<String>?
    public var format = ViewerFormat.json
    public var quality = QualityPreference.auto
    public var flow = FlowControl.push
    /// With `flow=credit`: unacknowledged frames per stream it allows (nil: the relay's default, 2).
    /// One halves a slow device's picture age (one read interval, not two) and costs a round trip per frame.
    public var credits: Int?
    public static let creditRange = 1...8
    /// `compat=patient_id` or `compat=none`: whether messages naming a stream
    /// also name it `patient_id`, as the relay framepipe replaces did; nil
    /// takes the relay's default (`--viewer-compat`).
    public var namesPatient: Bool?

    public struct Invalid: Error, Sendable, Equatable, CustomStringConvertible {
        public let description: String
    }

    public init() {}

    /// Reads the raw query after `?` (empty: none), percent-decoding it; the first of a name counts.
    public init(query: some StringProtocol) throws(Invalid) {
        let items = URLComponents(string: "?" + query)?.queryItems ?? []
        func first(_ name: String) -> String? { items.first { $0.name == name }.map { $0.value ?? "" } }
        if let list = first("streams"), !list.isEmpty {
            streams = Set(list.split(separator: ",").map(String.init))
        }
        if let raw = first("format") {
            guard let format = ViewerFormat(rawValue: raw), !format.isMJPEG else { throw Invalid(description: "format must be json or binary, got \"\(raw.prefix(32))\"") }
            self.format = format
        }
        if let raw = first("quality") {
            guard let quality = QualityPreference(rawValue: raw) else { throw Invalid(description: "quality must be auto, full or low, got \"\(raw.prefix(32))\"") }
            self.quality = quality
        }
        if let raw = first("flow") {
            guard let flow = FlowControl(rawValue: raw) else { throw Invalid(description: "flow must be push or credit, got \"\(raw.prefix(32))\"") }
            self.flow = flow
        }
        if let raw = first("compat") {
            switch raw {
            case "patient_id": namesPatient = true
            case "none": namesPatient = false
            default: throw Invalid(description: "compat must be patient_id or none, got \"\(raw.prefix(32))\"")
            }
        }
        if let raw = first("credits") {
            guard let n = Int(raw), Self.creditRange.contains(n) else {
                throw Invalid(description: "credits must be a whole number from 1 to 8, got \"\(raw.prefix(32))\"")
            }
            guard flow == .credit else { throw Invalid(description: "credits applies to flow=credit only") }
            credits = n
        }
    }
}

/// How frames are paced to a viewer.
public enum FlowControl: String, Sendable {
    /// As fast as its link takes them (latest wins when it cannot).
    case push
    /// At most a few unacknowledged frames per stream: the viewer sends
    /// `{"type":"ack","stream_id":…,"seq":…}` for each frame it has drawn,
    /// so a slow device, not only a slow link, gets fresh frames.
    case credit
}
