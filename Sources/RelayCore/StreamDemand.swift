import Pipeline

/// What a stream's viewers need of its camera, told to the streamer as
/// `{"type":"demand",…}` whenever it changes: whether anyone is shown the
/// stream at all, the largest picture any viewer is sent (or, where a
/// viewer gets the full picture, the size it draws it at), and the highest
/// frame rate any viewer is sent. A camera that follows it sends nothing
/// nobody sees (LiveKit calls this dynacast); one that ignores it loses
/// nothing but bandwidth.
package struct StreamDemand: Equatable, Sendable {
    package var watched: Bool
    /// Largest width and height any viewer needs; nil when some viewer
    /// needs the full picture at a size it did not say.
    package var width: Int?
    package var height: Int?
    /// Highest frame rate any viewer is sent; nil when some viewer gets every frame.
    package var fps: Double?

    package static let unwatched = StreamDemand(watched: false, width: nil, height: nil, fps: nil)
    /// What a streamer assumes before it is told anything: everything.
    package static let everything = StreamDemand(watched: true, width: nil, height: nil, fps: nil)

    package init(watched: Bool, width: Int?, height: Int?, fps: Double?) {
        self.watched = watched
        self.width = width
        self.height = height
        self.fps = fps
    }

    /// `{"type":"demand","watched":…,"width":…,"height":…,"fps":…}`; null means no bound.
    package var message: String {
        func number(_ n: Int?) -> String { n.map(String.init) ?? "null" }
        let rate = fps.map { String(format: "%.2f", $0) } ?? "null"
        return #"{"type":"demand","watched":\#(watched),"width":\#(number(width)),"height":\#(number(height)),"fps":\#(rate)}"#
    }
}

extension RelayState {
    /// What the viewers of stream `id` need now, from its delivery plan.
    mutating func demand(of id: String) -> StreamDemand {
        let targets = plan(for: id).targets
        guard !targets.isEmpty, let stream = streams[id] else { return .unwatched }
        let rungs = stream.pictures.options(json: false)
        var demand = StreamDemand(watched: true, width: 0, height: 0, fps: 0)
        for target in targets {
            var size: (Int?, Int?)
            if target.rendition.rung > 0, rungs.indices.contains(target.rendition.rung) {
                size = (rungs[target.rendition.rung].width, rungs[target.rendition.rung].height)
            } else {
                let view = viewers[target.viewer]?.views[id]
                size = (view?.width, view?.height)
            }
            demand.width = size.0.flatMap { w in demand.width.map { max($0, w) } }
            demand.height = size.1.flatMap { h in demand.height.map { max($0, h) } }
            demand.fps = target.maxFPS.flatMap { f in demand.fps.map { max($0, f) } }
        }
        return demand
    }

    /// Demand messages for every local streamer whose demand changed since
    /// it was last told (a new streamer is told at once). Nothing in a
    /// cluster yet: another node's viewers are not counted here, and a
    /// camera told "unwatched" while they watch would starve them.
    package mutating func demandUpdates() -> [RelayAction] {
        guard tellsDemand else { return [] }
        var actions: [RelayAction] = []
        for id in streams.keys.sorted() {
            guard let session = streams[id]!.session else { continue }
            let now = demand(of: id)
            guard streams[id]!.demandSent != now else { continue }
            streams[id]!.demandSent = now
            actions.append(.tellStreamer(session, now.message))
        }
        return actions
    }
}
