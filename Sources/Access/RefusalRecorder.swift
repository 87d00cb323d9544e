import Logging

/// Says each refusal where the people who need it look: one info line in
/// the log for the operator and one audit line for the privacy officer.
/// The upgrade gate and the HTTP middleware all refuse through it, so a
/// refusal is logged and audited the same way wherever it happens.
///
/// The path is whatever the client sent: it is logged without its query
/// (where tokens travel), cut to 128 bytes, and escaped if it holds
/// anything but printable ASCII.
package struct RefusalRecorder: Sendable {
    package let logger: Logger
    let audit: AuditLog?

    package init(logger: Logger, audit: AuditLog?) {
        self.logger = logger
        self.audit = audit
    }

    /// `target` is the request target as sent; `upgrade` says whether it asked for a WebSocket.
    package func record(_ refusal: Refusal, upgrade: Bool, target: String, client: String) {
        let path = target.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first.map { $0.prefix(128) } ?? ""
        let printable = path.utf8.allSatisfy { (0x20..<0x7F).contains($0) }
        // A refusal is the relay working as meant: info, not a warning.
        logger.info(upgrade ? "WebSocket upgrade refused" : "request refused", metadata: [
            "status": "\(refusal.status.code)", "reason": "\(refusal.reason)",
            "path": "\(printable ? String(path) : String(path).debugDescription)", "remote": "\(client)",
        ])
        audit?.record(.refused(what: upgrade ? "upgrade" : "http", path: target, status: Int(refusal.status.code), code: refusal.code,
                               reason: refusal.reason, identity: .init(grant: nil, client: client)))
    }
}
