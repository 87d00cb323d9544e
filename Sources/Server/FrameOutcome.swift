import Logging
import Pipeline
import RelayCore
import WireProtocol

/// What became of a streamer's frame in its pipeline, logged, counted and
/// acted on the same way whichever way it came in (a WebSocket, an HTTP
/// ingest): a drop counted, a rejection told to the sender and counted
/// against the stream, a stage's verdict that ends the stream carried out.
struct FrameOutcome {
    let hub: ViewerHub
    let metrics: RelayMetrics
    let streamID: String

    /// Logs and counts what became of a frame, closing the stream when the pipeline says so.
    func record(_ result: PipelineResult, seq: UInt64?, session: StreamSessionHandle, logger: Logger) {
        switch result {
        case .delivered:
            return
        case .dropped(let stage, let reason):
            metrics.frameDropped(stage: stage, reason: reason)
            hub.streamRejectedFrame(streamID, dropped: true)
            logger.debug("frame dropped", metadata: ["stage": "\(stage)", "reason": "\(reason)", "seq": "\(seq.map(String.init) ?? "-")"])
            return
        case .rejected(let rejection, let end):
            // The sender hears why, so a camera page can show it.
            if rejection.origin != .message { session.send(WireMessage.error("frame \(seq.map(String.init) ?? "-") rejected by \(rejection.stage): \(rejection.detail)")) }
            metrics.frameDropped(stage: rejection.stage, reason: rejection.code)
            hub.streamRejectedFrame(streamID, dropped: false)
            logger.warning("bad frame dropped", metadata: [
                "stage": "\(rejection.stage)", "reason": "\(rejection.code)", "detail": "\(rejection.detail)",
                "seq": "\(seq.map(String.init) ?? "-")",
            ])
            if let end {
                session.close(end)
                return
            }
            return
        case .streamClosed(let stage, let reason):
            logger.warning("stage closed the stream", metadata: ["stage": "\(stage)", "reason": "\(reason.rawValue)"])
            session.close(reason)
            return
        }
    }
}
