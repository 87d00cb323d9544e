import Foundation
import Synchronization

/// Reads what a child process writes to a pipe, to its end, on a thread of
/// its own, and signals each piece.
///
/// It replaces `FileHandle.readabilityHandler`, a dispatch source cleared
/// while the child exits: suspected (not proven) in crashes of the test
/// process inside libdispatch's event loop. A plain thread blocked in
/// `read(2)` has nothing to race: it ends when the child's end of the pipe
/// closes.
public final class PipeDrain: Sendable {
    /// Bytes, decoded only when asked: a read may end inside a character.
    private let said = Mutex<[UInt8]>([])
    /// Set once the pipe's writers have all closed it and everything was read.
    private let ended = Atomic(false)

    /// Starts reading `pipe` (already given to a process as its output);
    /// `changes` is signalled after each read.
    public init(_ pipe: Pipe, changes: ChangeSignal) {
        let handle = pipe.fileHandleForReading
        let thread = Thread { [self] in
            var buffer = [UInt8](repeating: 0, count: 16 * 1024)
            while true {
                let count = buffer.withUnsafeMutableBytes { read(handle.fileDescriptor, $0.baseAddress, $0.count) }
                if count < 0, errno == EINTR { continue }
                guard count > 0 else { break }
                said.withLock { $0 += buffer[..<count] }
                changes.changed()
            }
            try? handle.close()
            ended.store(true, ordering: .releasing)
            changes.changed()
        }
        thread.name = "framepipe-test-pipe-drain"
        thread.start()
    }

    /// Whether the child's last byte has been read: a child's exit is seen
    /// before this thread has read what it wrote just before exiting.
    public var reachedEnd: Bool { ended.load(ordering: .acquiring) }

    /// All the child wrote so far.
    public var text: String { String(decoding: said.withLock { $0 }, as: UTF8.self) }
}
