import Foundation
import Pipeline

/// The cluster's events and questions, passed to the state under the hub's
/// lock (see `RelayState+Cluster.swift` for the rules).
extension ViewerHub {
    package func remoteClaimed(_ id: String, by node: String, started: Bool) {
        let wall = clock.now
        transition { $0.remoteClaimed(id, by: node, started: started, at: wall) }
    }

    package func remoteStarted(_ id: String, by node: String) {
        let wall = clock.now
        transition { $0.remoteStarted(id, by: node, at: wall) }
    }

    package func remoteEnded(_ id: String, by node: String, reason: StreamEndReason) {
        transition { $0.remoteEnded(id, by: node, reason: reason) }
    }

    package func admitRemoteFrame(_ id: String, from node: String, seq: UInt64, replay: Bool = false) -> UInt64? {
        locked.withLockedValue { $0.relay.admitRemoteFrame(id, from: node, seq: seq, replay: replay) }
    }

    /// The newest frame of a started stream served here, for a node that asks for it.
    package func latestLocalFrame(of id: String) -> Frame? {
        read { state in state.streams[id].flatMap { $0.isLocal && $0.started ? $0.latestFrame : nil } }
    }

    /// Another node's stream changed health.
    package func remoteHealth(_ id: String, by node: String, _ event: StageEvent) {
        transition { $0.remoteHealth(id, by: node, event) }
    }

    /// Another node said what its viewers need of this node's stream `id`.
    package func demandElsewhere(_ id: String, by node: String, _ demand: StreamDemand) {
        let now = ContinuousClock.now
        transition { $0.demandElsewhere(id, by: node, demand, now: now) }
    }

    /// Whether every node of the cluster counts its viewers in demand (their heartbeats say).
    package func allNodesTellDemand(_ yes: Bool) {
        transition { $0.allNodesTellDemand(yes) }
    }

    /// What this node's viewers need of other nodes' streams, to repeat to their owners.
    package func demandForOtherNodes() -> [(id: String, demand: StreamDemand)] { read { $0.demandForOtherNodes() } }

    /// Delivers another node's frame (after this node's relay stages).
    package func deliverRemote(_ frame: Frame, from node: String) {
        let now = ContinuousClock.now
        transition(gates: .delivered) { $0.remoteFrameRelayed(frame, from: node, now: now) }
    }

    package func watchedRemoteStreams() -> Set<String> { read { $0.watchedRemoteStreams() } }
    package func remoteStreamsByOwner() -> [String: [String]] { read { $0.remoteStreamsByOwner() } }
    package func localStreams() -> [(id: String, started: Bool)] { read { $0.localStreams() } }
    package var remoteStreamCount: Int { read(\.remoteStreamCount) }

    package func resync(registry: [String: (owner: String, started: Bool)], liveNodes: Set<String>, me: String) -> [(id: String, started: Bool)] {
        let wall = clock.now
        return transition { $0.resync(registry: registry, liveNodes: liveNodes, me: me, at: wall) }
    }

    /// Ends every other node's stream here; returns how many.
    package func endRemoteStreams(reason: StreamEndReason) -> Int {
        transition { $0.endRemoteStreams(reason: reason) }.count
    }
}
