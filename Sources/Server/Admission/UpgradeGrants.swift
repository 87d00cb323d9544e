import NIOCore
import NIOConcurrencyHelpers

/// Hands the grant the `UpgradeGateHandler` verified to the WebSocket route
/// on the same connection, so the token is checked once and the route
/// cannot run without the gate's verdict.
final class UpgradeGrants: Sendable {
    private let grants = NIOLockedValueBox<[ObjectIdentifier: AccessGrant]>([:])

    func put(_ grant: AccessGrant, for channel: any Channel) {
        let key = ObjectIdentifier(channel)
        grants.withLockedValue { $0[key] = grant }
        // If the upgrade never reaches the route, forget the grant with the connection.
        channel.closeFuture.whenComplete { [self] _ in _ = take(for: key) }
    }

    func take(for channel: (any Channel)?) -> AccessGrant? { channel.flatMap { take(for: ObjectIdentifier($0)) } }

    private func take(for key: ObjectIdentifier) -> AccessGrant? {
        grants.withLockedValue { $0.removeValue(forKey: key) }
    }
}
