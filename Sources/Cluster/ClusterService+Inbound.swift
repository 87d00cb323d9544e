import Access
import RelayCore
import WireProtocol
import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import NIOSSL
import Pipeline
import RESP
import ServiceLifecycle

/// What Redis pushes to this node: registry announcements, revocations,
/// other nodes' frames and replays, each checked before it is believed.
extension ClusterService {
    /// Instant tiles: once Redis confirms this node listens on a stream's
    /// frames, its owner is asked for its latest frame at once, rather than
    /// waiting for the camera's next one. Asked only now: a frame published
    /// before the subscription took effect was not delivered here.
    func listening(to channels: Set<String>) {
        let streams = Set(channels.compactMap(keys.stream(ofFrameChannel:))).filter(listensOnEveryFrameChannel)
        if !streams.isEmpty { publisher.askForReplays(of: streams.sorted()) }
    }

    /// Redis confirmed every channel the stream's owner may publish on: a
    /// frame published now is delivered here, wherever its owner placed it.
    func listensOnEveryFrameChannel(of id: String) -> Bool {
        guard let link = connectedLink else { return false }
        return keys.frameChannels(id).allSatisfy(link.listened.contains)
    }

    func handleMessage(_ payload: ByteBuffer, on channel: String) {
        if channel == keys.controlChannel {
            handleControl(String(buffer: payload))
        } else if channel == keys.revocations {
            handleRevocation(String(buffer: payload))
        } else if keys.isFrameChannel(channel) {
            handleFrame(payload)
        } else if channel == replayChannel {
            handleFrame(payload, replay: true)
        }
    }

    /// Every revocation the cluster knows, read on each (re)connect: one
    /// published while this node was cut off is not missed.
    func loadRevocations(_ link: any ClusterBroker) async throws {
        let raw = try await link.run(RESPCommand("HGETALL", .string(keys.revoked)), timeout: .seconds(5)).array ?? []
        var loaded: [Revocation] = []
        for pair in stride(from: 1, to: raw.count, by: 2) {
            guard let text = raw[pair].string, let revocation = try? Revocation(json: Substring(text)) else {
                badMessage("revocation", "unreadable entry in \(keys.revoked)")
                continue
            }
            loaded.append(revocation)
        }
        if revocations.addFromCluster(loaded) {
            logger.notice("cluster revocations loaded", metadata: ["entries": "\(loaded.count)"])
        }
    }

    func handleRevocation(_ text: String) {
        do throws(Revocation.Invalid) {
            let revocation = try Revocation(json: Substring(text))
            if revocations.addFromCluster([revocation]) {
                logger.notice("revocation received from the cluster", metadata: ["revoked": "\(revocation.description)"])
            }
        } catch {
            badMessage("revocation", error.reason)
        }
    }

    func handleControl(_ text: String) {
        let event: ClusterEvent
        do {
            event = try ClusterEvent(json: text)
        } catch {
            badMessage("control", "\(error)")
            return
        }
        switch event {
        case .claimed(let id, let node, let started):
            guard node != me else { return }
            hub.remoteClaimed(id, by: node, started: started)
            if started { askForLatestFrameIfListening(id) }
        case .started(let id, let node):
            guard node != me else { return }
            hub.remoteStarted(id, by: node)
            askForLatestFrameIfListening(id)
        case .ended(let id, let node, let reason):
            if node == me {
                // Declared lost while cut off, yet still serving it: say so again.
                if reason == .nodeLost, let local = hub.localStreams().first(where: { $0.id == id }), let link = connectedLink {
                    logger.warning("another node declared this node lost; announcing its stream again", metadata: ["stream_id": "\(id)"])
                    publisher.claim(id, started: local.started, on: link)
                }
                return
            }
            // The camera's clock went with its stream (a later stream of that id measures its own).
            state.withLockedValue { s in if s.cameraClocks[id]?.node == node { s.cameraClocks[id] = nil } }
            hub.remoteEnded(id, by: node, reason: reason)
        case .health(let id, let node, let event):
            guard node != me else { return }
            hub.remoteHealth(id, by: node, event)
        case .clock(let id, let node, let offset):
            guard node != me else { return }
            state.withLockedValue { $0.cameraClocks[id] = (node, offset) }
        case .demand(let id, let node, let watched, let width, let height, let fps):
            guard node != me else { return }
            hub.demandElsewhere(id, by: node, StreamDemand(watched: watched, width: width, height: height, fps: fps))
        case .replayWanted(let id, let node):
            guard node != me, let frame = hub.latestLocalFrame(of: id) else { return }
            publisher.replay(frame, to: node)
        }
    }

    /// On a Redis Cluster a stream's frames and its announcements travel
    /// through different shards, so its first frames can arrive before this
    /// node hears it started, and are not shown. Once it hears, it asks for
    /// the latest again (a frame it already has is not shown twice).
    func askForLatestFrameIfListening(_ id: String) {
        guard listensOnEveryFrameChannel(of: id) else { return }
        publisher.askForReplays(of: [id])
    }

    func handleFrame(_ payload: ByteBuffer, replay: Bool = false) {
        let envelope: ClusterFrameEnvelope
        do {
            envelope = try ClusterFrameEnvelope(decoding: payload)
        } catch {
            badMessage("frame", "\(error)")
            return
        }
        guard envelope.node != me, let seq = hub.admitRemoteFrame(envelope.stream, from: envelope.node, seq: envelope.seq, replay: replay)
        else { return }
        metrics.clusterFrameReceived()
        var frame = Frame(streamID: envelope.stream, seq: seq, timestamp: envelope.timestamp,
                          receivedAt: envelope.receivedAt ?? Date().millisecondsSince1970, payload: .binary(envelope.jpeg))
        // The serving node's measure of the camera's clock, if it told one.
        if let timestamp = envelope.timestamp, let clock = state.withLockedValue({ $0.cameraClocks[envelope.stream] }),
           clock.node == envelope.node {
            frame.capturedAt = min(frame.receivedAt, timestamp + clock.offset)
        }
        frame.isReplay = replay
        relays.submit(frame, from: envelope.node, to: hub)
    }

    /// Logged for the first few, counted always: a foreign writer on our
    /// channels should be visible without flooding the log.
    func badMessage(_ kind: String, _ reason: String) {
        metrics.clusterBadMessage(kind)
        let log = state.withLockedValue { s -> Bool in
            s.badMessagesLogged += 1
            return s.badMessagesLogged <= 10
        }
        if log { logger.warning("ignored a malformed cluster message", metadata: ["kind": "\(kind)", "reason": "\(reason)"]) }
    }
}
