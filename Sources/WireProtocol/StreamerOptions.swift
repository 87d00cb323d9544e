import Foundation

/// What a streamer asks for in its socket's query: `flow=push|credit`.
/// With `credit` the relay answers every frame message with an `ack`
/// (taken or dropped, when it arrived, how late), from which the streamer
/// paces itself: it keeps at most a few frames unacknowledged, so frames
/// wait on the camera, where a newer one can replace them, not in a send
/// buffer on a slow uplink. Parsed at the route before the upgrade, so a
/// bad option is refused with its reason.
public struct StreamerOptions: Sendable, Equatable {
    public var flow = FlowControl.push

    public init() {}

    /// Reads the raw query after `?` (empty: none); other names (`token`) are not its business.
    public init(query: some StringProtocol) throws(ViewerOptions.Invalid) {
        let items = URLComponents(string: "?" + query)?.queryItems ?? []
        if let raw = items.first(where: { $0.name == "flow" }).map({ $0.value ?? "" }) {
            guard let flow = FlowControl(rawValue: raw) else {
                throw ViewerOptions.Invalid(description: "flow must be push or credit, got \"\(raw.prefix(32))\"")
            }
            self.flow = flow
        }
    }
}
