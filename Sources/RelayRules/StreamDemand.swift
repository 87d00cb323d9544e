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

    static let unwatched = StreamDemand(watched: false, width: nil, height: nil, fps: nil)
    /// What a streamer assumes before it is told anything: everything.
    static let everything = StreamDemand(watched: true, width: nil, height: nil, fps: nil)

    package init(watched: Bool, width: Int?, height: Int?, fps: Double?) {
        self.watched = watched
        self.width = width
        self.height = height
        self.fps = fps
    }

    /// What two groups of viewers need together: watched by either, the
    /// larger picture and the higher rate (no bound beats any bound).
    func merged(with other: StreamDemand) -> StreamDemand {
        guard watched else { return other }
        guard other.watched else { return self }
        func larger<T: Comparable>(_ a: T?, _ b: T?) -> T? { a.flatMap { a in b.map { max(a, $0) } } }
        return StreamDemand(watched: true, width: larger(width, other.width), height: larger(height, other.height), fps: larger(fps, other.fps))
    }

    /// `{"type":"demand","watched":…,"width":…,"height":…,"fps":…}`; null means no bound.
    var message: String {
        func number(_ n: Int?) -> String { n.map(String.init) ?? "null" }
        let rate = fps.map { String(format: "%.2f", $0) } ?? "null"
        return #"{"type":"demand","watched":\#(watched),"width":\#(number(width)),"height":\#(number(height)),"fps":\#(rate)}"#
    }
}

extension RelayState {
    /// How long another node's word on a stream's demand counts without being repeated.
    static let demandElsewhereLifetime: Duration = .seconds(15)

    /// What the viewers of stream `id` on this node need now, from its fan-out plan.
    mutating func demand(of id: String) -> StreamDemand {
        let targets = plan(for: id).fanOut.targets
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
    /// it was last told (a new streamer is told at once): its viewers here
    /// merged with what other nodes said theirs need. While some node of
    /// the cluster does not count its viewers (`tellsDemand` off: an older
    /// node), a camera is told to send everything, since a camera told
    /// "unwatched" while that node's viewers watch would starve them. For
    /// another node's stream, what this node's viewers need goes to the
    /// cluster when it changes.
    package mutating func demandUpdates() -> [RelayAction] {
        var actions: [RelayAction] = []
        for id in streams.keys.sorted() {
            let here = demand(of: id)
            if let session = streams[id]!.session {
                let told = tellsDemand ? streams[id]!.demandElsewhere.values.reduce(here) { $0.merged(with: $1.demand) } : .everything
                guard streams[id]!.demandSent != told else { continue }
                streams[id]!.demandSent = told
                actions.append(.tellStreamer(session, told.message))
            } else if streams[id]!.demandSent != here {
                streams[id]!.demandSent = here
                actions.append(.cluster(.demand(id, here)))
            }
        }
        return actions
    }

    /// Another node said what its viewers need of this node's stream `id`.
    package mutating func demandElsewhere(_ id: String, by node: String, _ demand: StreamDemand, now: ContinuousClock.Instant) -> [RelayAction] {
        guard streams[id]?.isLocal == true else { return [] }
        streams[id]!.demandElsewhere[node] = (demand, now)
        return demandUpdates()
    }

    /// Forgets what other nodes said and did not repeat in time (a node gone, a message lost).
    package mutating func expireDemandElsewhere(now: ContinuousClock.Instant) -> [RelayAction] {
        var changed = false
        for id in streams.keys where !streams[id]!.demandElsewhere.isEmpty {
            let before = streams[id]!.demandElsewhere.count
            streams[id]!.demandElsewhere = streams[id]!.demandElsewhere.filter { now - $0.value.at < Self.demandElsewhereLifetime }
            changed = changed || streams[id]!.demandElsewhere.count != before
        }
        return changed ? demandUpdates() : []
    }

    /// What this node's viewers need of each other node's stream they
    /// watch, to repeat to its owner while it holds.
    package func demandForOtherNodes() -> [(id: String, demand: StreamDemand)] {
        streams.keys.sorted().compactMap { id in
            guard streams[id]!.owner != nil, let sent = streams[id]!.demandSent, sent.watched else { return nil }
            return (id, sent)
        }
    }

    /// Whether every node of the cluster counts its viewers in demand.
    package mutating func allNodesTellDemand(_ yes: Bool) -> [RelayAction] {
        guard tellsDemand != yes else { return [] }
        tellsDemand = yes
        return demandUpdates()
    }
}
