import Pipeline
import Foundation
import Logging
import ServiceLifecycle

/// Reloads the revocation file whenever it changes (checked every 250 ms by
/// its size, modification time and inode, so an edit, an append by
/// `framepipe revoke` and a replacement by rename are all seen), then ends
/// the open sockets it newly revokes: within a second of the file changing.
///
/// A file that cannot be read keeps the list as it was and says why; a bad
/// line is reported with its number and the other lines still count.
package struct RevocationFileWatcher: Service {
    let path: String
    package let revocations: Revocations
    package let logger: Logger
    package static let interval = Duration.milliseconds(250)
    /// What the checks are paced on.
    package let clock: any RelayClock

    package init(path: String, revocations: Revocations, logger: Logger, clock: any RelayClock = SystemRelayClock()) {
        self.path = path
        self.revocations = revocations
        self.logger = logger
        self.clock = clock
    }

    private struct Stamp: Equatable {
        let size: UInt64
        let modified: Date
        let inode: UInt64
    }

    package func run() async throws {
        await cancelWhenGracefulShutdown {
            var loaded = false
            var last: Stamp?
            while !Task.isCancelled {
                let stamp = Self.stamp(of: path)
                if !loaded || stamp != last {
                    loaded = true
                    last = stamp
                    load(exists: stamp != nil)
                }
                try? await clock.sleep(for: Self.interval)
            }
        }
    }

    /// Reads the file once; used at start and on every change.
    func load(exists: Bool) {
        guard exists else {
            revocations.replaceFromFile([])
            logger.info("revocation file does not exist yet; nothing is revoked", metadata: ["file": "\(path)"])
            return
        }
        guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
            logger.error("cannot read the revocation file; keeping the revocations already loaded", metadata: ["file": "\(path)"])
            return
        }
        let (parsed, problems) = Revocation.parseFile(text)
        for problem in problems {
            logger.warning("revocation file has a bad line; it is skipped", metadata: ["file": "\(path)", "problem": "\(problem)"])
        }
        let added = revocations.replaceFromFile(parsed)
        logger.notice("revocation list loaded", metadata: ["file": "\(path)", "entries": "\(parsed.count)", "new": "\(added)"])
    }

    private static func stamp(of path: String) -> Stamp? {
        guard let attributes = try? FileManager.default.attributesOfItem(atPath: path) else { return nil }
        return Stamp(size: (attributes[.size] as? NSNumber)?.uint64Value ?? 0,
                     modified: attributes[.modificationDate] as? Date ?? .distantPast,
                     inode: (attributes[.systemFileNumber] as? NSNumber)?.uint64Value ?? 0)
    }
}
