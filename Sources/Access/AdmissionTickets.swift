import NIOCore
import NIOConcurrencyHelpers

/// What the `UpgradeGateHandler` found out about an admitted upgrade: the
/// token it verified (none with auth off) and the real client address
/// (behind a trusted proxy, the one the proxy named).
package struct AdmissionTicket: Sendable {
    package let grant: AccessGrant?
    package let client: String
}

/// Hands each admitted upgrade's ticket to the WebSocket route on the same
/// connection, so the token is checked once, the route cannot run without
/// the gate's verdict, and logs and the audit trail name the real client.
package final class AdmissionTickets: Sendable {
    package init() {}

    private let tickets = NIOLockedValueBox<[ObjectIdentifier: AdmissionTicket]>([:])

    func put(_ ticket: AdmissionTicket, for channel: any Channel) {
        let key = ObjectIdentifier(channel)
        tickets.withLockedValue { $0[key] = ticket }
        // If the upgrade never reaches the route, forget the ticket with the connection.
        channel.closeFuture.whenComplete { [self] _ in _ = take(for: key) }
    }

    package func take(for channel: (any Channel)?) -> AdmissionTicket? { channel.flatMap { take(for: ObjectIdentifier($0)) } }

    private func take(for key: ObjectIdentifier) -> AdmissionTicket? {
        tickets.withLockedValue { $0.removeValue(forKey: key) }
    }
}
