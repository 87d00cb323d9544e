import Foundation
import Synchronization

/// Reads what a child process writes to a pipe, to its end, on a thread of
/// its own, and signals each piece.
///
/// It replaces `FileHandle.readabilityHandler`: that handler is a dispatch
/// source, and clearing it while the child exits raced with the source in
/// libdispatch's event loop and crashed the whole test process in CI runs.
/// A plain thread blocked in `read(2)` has nothing to race: it ends when
/// the child's end of the pipe closes.
public final class PipeDrain: Sendable {
    private let said = Mutex("")
    private let done = Mutex(false)
    private let changes: ChangeSignal

    /// Starts reading `pipe` (already given to a process as its output);
    /// `changes` is signalled after each read and at the end.
    public init(_ pipe: Pipe, changes: ChangeSignal) {
        self.changes = changes
        let handle = pipe.fileHandleForReading
        let thread = Thread { [self] in
            var buffer = [UInt8](repeating: 0, count: 16 * 1024)
            while true {
                let count = buffer.withUnsafeMutableBytes { read(handle.fileDescriptor, $0.baseAddress, $0.count) }
                if count < 0, errno == EINTR { continue }
                guard count > 0 else { break }
                said.withLock { $0 += String(decoding: buffer[..<count], as: UTF8.self) }
                changes.changed()
            }
            try? handle.close()
            done.withLock { $0 = true }
            changes.changed()
        }
        thread.name = "framepipe-test-pipe-drain"
        thread.start()
    }

    /// All the child wrote so far.
    public var text: String { said.withLock { $0 } }

    /// Whether the pipe reached its end (every writer closed it).
    public var finished: Bool { done.withLock { $0 } }
}
