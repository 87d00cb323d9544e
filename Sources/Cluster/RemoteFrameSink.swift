import Pipeline
import RelayCore

/// The relay runner's sink for another node's frames: delivers through the
/// hub as that node's, and asks the hub which renditions viewers here are sent.
struct RemoteFrameSink: FrameSink {
    let hub: ViewerHub
    let node: String

    func publish(_ frame: Frame) { hub.deliverRemote(frame, from: node) }
    func wantedRenditions(streamID: String, ladder: RenditionLadder) -> RenditionSet {
        hub.wantedRenditions(streamID: streamID, ladder: ladder)
    }
}
