/// Which node pulls a camera (`"sources"`) when several relays could.
///
/// It exists so a camera is pulled once per cluster, whatever the number of
/// nodes that list it: each node asks before it pulls and again while it
/// pulls, and one that dies leaves the camera to another once its lease
/// runs out. A relay alone always holds every lease.
package protocol SourceLeases: Sendable {
    /// Takes, or renews, this node's lease on the source of `streamID`.
    func holdSource(_ streamID: String) async -> SourceLease
    /// Gives the lease up (the source was removed, or the node stops), so another node takes it at once.
    func releaseSource(_ streamID: String) async
    /// How often a holder renews, and how often the others ask again.
    var leaseRenewal: Duration { get }
}

/// What a node heard when it asked for a source's lease.
package enum SourceLease: Sendable, Equatable {
    case held
    /// Another node pulls it.
    case heldBy(String)
    /// It cannot be known now (Redis unreachable): a holder keeps pulling, others wait.
    case unknown(String)
}

/// A relay without a cluster: it pulls every source it lists.
package struct SoleNodeLeases: SourceLeases {
    package init() {}
    package func holdSource(_ streamID: String) async -> SourceLease { .held }
    package func releaseSource(_ streamID: String) async {}
    package var leaseRenewal: Duration { .seconds(1) }
}
