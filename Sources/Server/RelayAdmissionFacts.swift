import Access
import RelayCore

/// The upgrade gate's questions (`AdmissionFacts`) answered from the hub's
/// counts and the pipelines file in force.
struct RelayAdmissionFacts: AdmissionFacts {
    let hub: ViewerHub
    /// Nil when pipelines were given in code, without `"sources"`.
    let live: LiveConfiguration?

    func counts(forStream streamID: String?, token tokenID: String?) -> AdmissionCounts {
        let counts = hub.admissionCounts(streamID: streamID, tokenID: tokenID)
        return AdmissionCounts(streams: counts.streams, streamIsLive: counts.streamIsLive, viewers: counts.viewers,
                               tokenViewers: counts.tokenViewers)
    }

    func pulledSource(of streamID: String) -> String? {
        live?.current.config.source(of: streamID)?.url
    }
}

/// The relay's metrics count what the access layer refuses.
extension RelayMetrics: AccessMetrics {}
