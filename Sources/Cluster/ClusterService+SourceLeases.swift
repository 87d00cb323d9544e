import RelayCore
import RESP

/// A camera is pulled by the node holding its lease in Redis: a key with
/// the node timeout as its TTL, renewed three times per timeout. A node
/// that dies stops renewing; another takes the camera when the key expires,
/// the same time after which its streams end with `node_lost`.
extension ClusterService: SourceLeases {
    package var leaseRenewal: Duration { settings.nodeTimeout / 3 }

    package func holdSource(_ streamID: String) async -> SourceLease {
        guard let link = connectedLink else {
            return .unknown("Redis (\(settings.redis)) unreachable")
        }
        do {
            let holder = try await link.run(RESPCommand("EVAL", .string(ClusterKeys.holdSourceScript), "1", .string(keys.source(streamID)),
                                                           .string(settings.nodeID), .string(String(settings.nodeTimeout.milliseconds))),
                                               timeout: leaseRenewal).string
            guard let holder else { return .unknown("Redis answered the lease script with no holder") }
            return holder == settings.nodeID ? .held : .heldBy(holder)
        } catch {
            return .unknown("\(error)")
        }
    }

    package func releaseSource(_ streamID: String) async {
        guard let link = connectedLink else { return }
        _ = try? await link.run(RESPCommand("EVAL", .string(ClusterKeys.releaseSourceScript), "1", .string(keys.source(streamID)),
                                               .string(settings.nodeID)), timeout: leaseRenewal)
    }
}
