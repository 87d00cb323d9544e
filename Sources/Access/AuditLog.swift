import Foundation
import Logging
import ServiceLifecycle
import UnixSignals

/// The audit trail (`--audit-log FILE`): JSON lines, appended and flushed
/// one line per write, reopened on SIGHUP so logrotate can move the file.
///
/// `record` never blocks the caller (it may be an event loop): lines go
/// through a bounded queue to this service's own task, which does the file
/// I/O. A full queue or a failing disk is logged and counted, never fatal —
/// the relay keeps serving, and the operator hears about it.
package final class AuditLog: Service, Sendable {
    private enum Input: Sendable { case line(String), reopen }

    let path: String
    private let logger: Logger
    private let metrics: any AccessMetrics
    private let inputs: AsyncStream<Input>
    private let queue: AsyncStream<Input>.Continuation
    /// Lines waiting beyond this are dropped, and counted.
    static let queueLimit = 10_000

    package init(path: String, metrics: any AccessMetrics, logger: Logger) {
        self.path = path
        self.metrics = metrics
        self.logger = logger
        (inputs, queue) = AsyncStream.makeStream(of: Input.self, bufferingPolicy: .bufferingOldest(Self.queueLimit))
    }

    /// Fails at start when the file cannot be opened, so a relay told to
    /// keep an audit trail never runs without one.
    package func checkWritable() throws {
        let fd = Self.open(path)
        guard fd >= 0 else { throw AuditLogUnwritable(path: path, reason: String(cString: strerror(errno))) }
        close(fd)
    }

    package func record(_ event: AuditEvent) {
        if case .dropped = queue.yield(.line(event.line(at: Date()))) {
            metrics.auditLineDropped()
            logger.error("audit log queue is full; an audit line was dropped", metadata: ["file": "\(path)"])
        }
    }

    package func run() async throws {
        let hangups = await UnixSignalsSequence(trapping: .sighup)
        let queue = queue
        // SIGHUP: close and reopen by name, so a rotated file is left alone.
        let signals = Task {
            for await _ in hangups { queue.yield(.reopen) }
        }
        defer { signals.cancel() }
        await withGracefulShutdownHandler {
            await writeLines()
        } onGracefulShutdown: {
            // Lines already queued are still written; then the loop ends.
            queue.finish()
        }
    }

    private func writeLines() async {
        var fd = Self.open(path)
        if fd < 0 { logger.error("cannot open the audit log", metadata: ["file": "\(path)", "error": "\(String(cString: strerror(errno)))"]) }
        var failing = false
        for await input in inputs {
            switch input {
            case .reopen:
                if fd >= 0 { close(fd) }
                fd = Self.open(path)
                if fd < 0 {
                    logger.error("cannot reopen the audit log after SIGHUP", metadata: ["file": "\(path)", "error": "\(String(cString: strerror(errno)))"])
                } else {
                    logger.info("audit log reopened", metadata: ["file": "\(path)"])
                }
            case .line(let line):
                if fd < 0 { fd = Self.open(path) }
                if fd >= 0, Self.write(line + "\n", to: fd) {
                    if failing { logger.notice("audit log writes work again", metadata: ["file": "\(path)"]) }
                    failing = false
                } else {
                    metrics.auditWriteFailed()
                    // One line per failing streak, not one per lost record.
                    if !failing {
                        logger.error("cannot write to the audit log; lines are lost until it works again",
                                     metadata: ["file": "\(path)", "error": "\(String(cString: strerror(errno)))"])
                    }
                    failing = true
                }
            }
        }
        if fd >= 0 { close(fd) }
    }

    private static func open(_ path: String) -> Int32 {
        Glibc.open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o640)
    }

    /// One `write` per line (O_APPEND makes each land whole at the end), continued after a short write.
    private static func write(_ line: String, to fd: Int32) -> Bool {
        let bytes = Array(line.utf8)
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + offset, $0.count - offset) }
            if n < 0 {
                if errno == EINTR { continue }
                return false
            }
            offset += n
        }
        return true
    }
}

package struct AuditLogUnwritable: Error, CustomStringConvertible {
    let path: String
    package let reason: String
    package var description: String { "cannot open the audit log \(path) for appending: \(reason)" }
}
