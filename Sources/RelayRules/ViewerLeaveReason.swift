import Logging

/// Why a viewer's connection ended, as logs, metrics and the audit trail
/// say it. One enum, so a reason cannot be misspelt on one side and
/// compared against on the other.
package enum ViewerLeaveReason: String, Sendable {
    /// The viewer closed its socket.
    case closed
    /// The relay finished the viewer's mailbox (a graceful shutdown) and it drained.
    case finished
    /// Reading from the socket failed (a reset, a protocol error).
    case readFailed = "read_failed"
    /// The viewer left more replies unread than `maxViewerBacklog`.
    case backlog
    /// The socket accepted nothing for `viewerSendTimeout` while frames waited.
    case sendTimeout = "send_timeout"
    /// No pong within `pingTimeout`.
    case pingTimeout = "ping_timeout"
    case tokenExpired = "token_expired"
    case tokenRevoked = "token_revoked"

    /// Leaving as meant is info; being cut off is worth a warning.
    package var logLevel: Logger.Level {
        switch self {
        case .closed, .finished, .tokenExpired: .info
        case .readFailed, .backlog, .sendTimeout, .pingTimeout, .tokenRevoked: .warning
        }
    }
}
