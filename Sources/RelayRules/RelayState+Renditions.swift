import Logging
import Pipeline
import WireProtocol

/// Which picture each viewer gets of each stream: the viewers' `view`
/// hints (drawn size, visibility), the delivery policy's choices, and what
/// the streams' pictures cost.
extension RelayState {
    /// One viewer moved to another rung of one stream, with what its policy
    /// was shown when it chose: an operator (or a failed test) can read why.
    package struct RenditionChange: Equatable {
        package let viewer: String
        package let stream: String
        package let from: String
        package let to: String
        /// The measuring window just closed, if the change came from one.
        package let window: LossWindow?
        package let link: LinkFigures

        init(viewer: String, stream: String, from: String, to: String, window: LossWindow? = nil, link: LinkFigures = LinkFigures()) {
            self.viewer = viewer
            self.stream = stream
            self.from = from
            self.to = to
            self.window = window
            self.link = link
        }

        /// The line an operator reads: which viewer, which stream, and the figures behind the choice.
        package var logMetadata: Logger.Metadata {
            var metadata: Logger.Metadata = [
                "viewer_id": "\(viewer)", "stream_id": "\(stream)", "from": "\(from)", "to": "\(to)",
                "goodput_bytes_per_second": link.goodput.map { "\(Int($0.rounded()))" } ?? "none",
                "unsent_bytes": "\(link.unsentBytes)", "link_limited": "\(link.linkLimited)", "reader_limited": "\(link.readerLimited)",
            ]
            if let window {
                metadata["frames_offered"] = "\(window.offered)"
                metadata["frames_replaced"] = "\(window.replaced)"
            }
            return metadata
        }
    }

    /// Learns a stream's ladder and picture costs from an accepted frame.
    /// When the ladder or the picture size first becomes known, its viewers'
    /// policies choose again at once instead of at the next sample.
    mutating func learnPictures(of frame: Frame) -> [RelayAction] {
        let id = frame.streamID
        // Only what is compared is kept aside: holding the whole figures would copy their array on every frame.
        let (ladder, width) = (streams[id]!.pictures.ladder, streams[id]!.pictures.width)
        streams[id]!.pictures.record(frame)
        guard streams[id]!.pictures.ladder != ladder || streams[id]!.pictures.width != width else { return [] }
        fanOutPlans[id] = nil
        let menu = renditionMenu()
        return watchers(of: id).flatMap { chooseRenditions(for: $0, now: frame.arrival, window: nil, menu: menu) }.map(Self.logged)
    }

    /// What a viewer shows of a stream (`view`). A tile that becomes
    /// visible is sent the stream's latest frame at once (`"cached": true`)
    /// instead of waiting for the next one; its policy chooses again for
    /// the new size.
    package mutating func setView(_ id: String, stream streamID: String, _ view: StreamView, now: ContinuousClock.Instant) -> [RelayAction] {
        guard let viewer = viewers[id], viewer.watches(streamID) else { return [] }
        let wasShown = viewer.shows(streamID)
        guard viewer.views[streamID] != view else { return [] }
        viewers[id]!.views[streamID] = view
        var actions = chooseRenditions(for: id, now: now, window: nil).map(Self.logged)
        if view.visible, !wasShown, let replay = replayLatest(of: streamID, to: id) { actions.append(replay) }
        return actions + demandUpdates()
    }

    /// The stream's latest frame, sent again to one viewer that has just
    /// come to show it (connected, subscribed, its tile visible again), so a
    /// slow camera's tile is not blank until its next frame: `"cached": true`,
    /// offered only while it is still the latest (its ticket names its seq),
    /// so it never follows a newer one. Nil when there is none here (another
    /// node's stream no viewer here watched yet).
    func replayLatest(of streamID: String, to id: String) -> RelayAction? {
        guard let viewer = viewers[id], viewer.shows(streamID), let stream = streams[streamID], stream.started,
              let latest = stream.latestFrame else { return nil }
        let target = FrameTarget(viewer: id, rendition: RenditionKind(rung: viewer.rung(for: streamID, ladder: stream.pictures.ladder)),
                                 handle: viewer.handle)  // uncapped: the one frame it has been waiting for
        var fanOut = FanOut()
        fanOut.add(target, format: viewer.format, namingPatient: viewer.namesPatient)
        return .deliver(latest, to: fanOut, ticket: FrameTicket(stream: streamID, holder: stream.holder, replayOf: latest.seq))
    }

    /// The started streams, by id, with what their rungs cost each format:
    /// worked out once per review or listing, not once per viewer and stream.
    struct MenuEntry {
        let id: String
        let ladder: RenditionLadder
        let fps: Double
        let binary: [RungOption]
        let json: [RungOption]
    }

    func renditionMenu() -> [MenuEntry] {
        streams.keys.sorted().compactMap { id in
            let stream = streams[id]!
            guard stream.started else { return nil }
            return MenuEntry(id: id, ladder: stream.pictures.ladder, fps: stream.fps,
                             binary: stream.pictures.options(json: false), json: stream.pictures.options(json: true))
        }
    }

    /// Runs a viewer's policy over the started streams it watches; `window`
    /// is the measuring window just closed, nil between samples; `menu`, when
    /// the caller reviews many viewers at once.
    mutating func chooseRenditions(for id: String, now: ContinuousClock.Instant, window: LossWindow?,
                                   menu given: [MenuEntry]? = nil) -> [RenditionChange] {
        guard let viewer = viewers[id], var state = policies[id] else { return [] }
        let json = viewer.format == .json
        let offers: [StreamOffer] = (given ?? renditionMenu()).compactMap { entry in
            guard viewer.watches(entry.id) else { return nil }
            let view = viewer.views[entry.id]
            return StreamOffer(id: entry.id, visible: view?.visible ?? true, displayWidth: view?.width, displayHeight: view?.height,
                               fps: entry.fps, rungs: json ? entry.json : entry.binary, allowed: viewer.allowedRungs(entry.ladder),
                               current: viewer.rung(for: entry.id, ladder: entry.ladder))
        }
        let chosen = state.policy.choose(DeliveryInput(now: now, preference: viewer.quality, link: state.link, window: window, streams: offers))
        policies[id] = state
        var changes: [RenditionChange] = []
        var choices: [String: DeliveryChoice] = [:]
        for offer in offers {
            let rung = min(max(chosen[offer.id]?.rung ?? offer.current, offer.allowed.lowerBound), offer.allowed.upperBound)
            let policyCap = chosen[offer.id]?.maxFPS.flatMap { $0 > 0 ? $0 : nil }
            let asked = viewer.views[offer.id]?.maxFPS
            choices[offer.id] = DeliveryChoice(rung: rung, maxFPS: [policyCap, asked].compactMap { $0 }.min())
            if rung != offer.current {
                changes.append(RenditionChange(viewer: id, stream: offer.id, from: offer.rungs[offer.current].label, to: offer.rungs[rung].label,
                                               window: window, link: state.link))
            }
        }
        // Only a real change touches the record (and so the cached fan-out plans).
        if viewer.choices != choices { viewers[id]!.choices = choices }
        return changes
    }

    package static func logged(_ change: RenditionChange) -> RelayAction {
        .log(.info, "viewer's rendition changed", change.logMetadata)
    }
}

/// One stream as `/api/viewers` shows it for one viewer.
package struct StreamViewSnapshot: Equatable {
    package let stream: String
    package let view: StreamView?
    package let rung: Int
    package let rendition: String
    package let width: Int?
    package let height: Int?
    package let maxFPS: Double?
}

/// A viewer as `/api/viewers` shows it, as far as the rules know it; the
/// hub adds what its mailbox counted.
package struct ViewerListing {
    package let id: String
    package let streams: Set<String>?
    package let format: ViewerFormat
    package let quality: QualityPreference
    package let slow: Bool
    /// Per stream it watches: what it shows and the rendition it is sent.
    package let views: [StreamViewSnapshot]
    /// Sent a smaller rendition of some stream than the full picture.
    package var receivesLow: Bool { views.contains { $0.rung > 0 } }
}

extension RelayState {
    /// Every viewer, in the order they connected. Each record is read once
    /// and each stream's renditions once: with a thousand viewers, copying
    /// records and streams out per viewer was most of the time the hub's
    /// lock was held for a listing.
    package func viewerListings() -> [ViewerListing] {
        let menu = renditionMenu()
        return inConnectionOrder { record in
            ViewerListing(id: record.id, streams: record.streams, format: record.format, quality: record.quality,
                          slow: record.slowness.slow, views: viewSnapshots(of: record, menu: menu))
        }
    }

    /// The started streams a viewer watches, with its view and rendition of each.
    /// `menu`, when the caller lists many viewers at once: each stream's
    /// renditions read once, not copied out of the stream for every viewer.
    func viewSnapshots(of viewer: ViewerRecord, menu given: [MenuEntry]? = nil) -> [StreamViewSnapshot] {
        (given ?? renditionMenu()).compactMap { entry in
            guard viewer.watches(entry.id) else { return nil }
            let rung = viewer.rung(for: entry.id, ladder: entry.ladder)
            let option = entry.binary[rung]
            return StreamViewSnapshot(stream: entry.id, view: viewer.views[entry.id], rung: rung, rendition: option.label,
                                      width: option.width, height: option.height, maxFPS: viewer.choices[entry.id]?.maxFPS)
        }
    }
}
