import Foundation
@testable import FramepipeServer
import Logging
import NIOCore
import NIOEmbedded
import Pipeline
import RelayCore
import Testing

/// The hub's cluster rules as plain calls: other nodes' streams, seq across
/// a move between nodes, `node_lost`, and the resync after an outage.
@Suite("Viewer hub in a cluster")
struct ViewerHubClusterTests {
    @Test func seqNeverGoesBackwardsWhenAStreamMovesBetweenNodes() throws {
        let (hub, _) = ViewerHubTests.hub()
        let viewer = try #require(ViewerHubTests.viewer(hub))
        // On node A, its frames numbered from A's count.
        hub.remoteClaimed("P-1", by: "node-a", started: true)
        #expect(hub.admitRemoteFrame("P-1", from: "node-a", seq: 40) == 40)
        #expect(hub.admitRemoteFrame("P-1", from: "node-a", seq: 41) == 41)
        #expect(hub.admitRemoteFrame("P-1", from: "node-b", seq: 0) == nil, "node B does not serve it yet")
        // The camera reconnects to node B, whose count starts again at 0.
        hub.remoteClaimed("P-1", by: "node-b", started: true)
        #expect(hub.admitRemoteFrame("P-1", from: "node-a", seq: 42) == nil, "node A no longer serves it")
        #expect(hub.admitRemoteFrame("P-1", from: "node-b", seq: 0) == 42)
        #expect(hub.admitRemoteFrame("P-1", from: "node-b", seq: 1) == 43)
        // Then to this node: local frames continue after the last one viewers had.
        let here = try #require(ViewerHubTests.connect(hub, "P-1"))
        #expect(here.firstSeq == 44)
        // Viewers heard of the stream once and never of its end.
        #expect(ViewerHubTests.controlTypes(viewer) == ["viewer_connected", "stream_started P-1"])
    }

    @Test func aLostNodesStreamsEndAsNodeLostAndALateEndFromTheOldOwnerIsIgnored() throws {
        let (hub, _) = ViewerHubTests.hub()
        let viewer = try #require(ViewerHubTests.viewer(hub))
        hub.remoteClaimed("P-1", by: "node-a", started: true)
        hub.remoteClaimed("P-2", by: "node-b", started: true)
        #expect(hub.remoteStreamsByOwner() == ["node-a": ["P-1"], "node-b": ["P-2"]])
        hub.remoteEnded("P-1", by: "node-b", reason: .closed)  // not its owner: nothing happens
        hub.remoteEnded("P-1", by: "node-a", reason: .nodeLost)
        #expect(ViewerHubTests.controlTypes(viewer) == [
            "viewer_connected", "stream_started P-1", "stream_started P-2", "stream_ended P-1 node_lost",
        ])
        #expect(hub.remoteStreamsByOwner() == ["node-b": ["P-2"]])
    }

    /// After Redis comes back: a stream that ended meanwhile on a live node
    /// ends here; one whose node is not back is kept for the liveness check;
    /// a new one appears; a local stream another node claimed is replaced.
    @Test func resyncAfterAnOutageAlignsTheHubWithTheRegistry() async throws {
        let (hub, _) = ViewerHubTests.hub()
        let viewer = try #require(ViewerHubTests.viewer(hub))
        hub.remoteClaimed("ended-meanwhile", by: "node-a", started: true)
        hub.remoteClaimed("node-not-back", by: "node-c", started: true)
        let moved = try #require(ViewerHubTests.connect(hub, "moved-away"))
        hub.publish(ViewerHubTests.frame("moved-away", seq: 0))
        let kept = try #require(ViewerHubTests.connect(hub, "still-mine", session: 2))
        _ = kept
        let mine = hub.resync(registry: [
            "new-stream": ("node-a", true),
            "moved-away": ("node-b", true),
            "still-mine": ("node-me", false),
        ], liveNodes: ["node-a", "node-b"], me: "node-me")
        #expect(mine.map(\.id) == ["still-mine"])
        #expect(Set(hub.remoteStreamsByOwner().keys) == ["node-a", "node-b", "node-c"])
        #expect(hub.remoteStreamsByOwner()["node-a"] == ["new-stream"])
        var commands = moved.commands.makeAsyncIterator()
        guard case .close(let reason)? = await commands.next() else { Issue.record("the moved stream's streamer was not closed"); return }
        #expect(reason == .replaced)
        let types = ViewerHubTests.controlTypes(viewer)
        #expect(types.contains("stream_ended ended-meanwhile closed"))
        #expect(types.contains("stream_started new-stream"))
        #expect(!types.contains { $0.hasPrefix("stream_ended node-not-back") })
        #expect(!types.contains { $0.hasPrefix("stream_ended moved-away") }, "a move is not an end")
    }
}
