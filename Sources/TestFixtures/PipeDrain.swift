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
        }
        thread.name = "framepipe-test-pipe-drain"
        thread.start()
    }

    /// All the child wrote so far.
    public var text: String { String(decoding: said.withLock { $0 }, as: UTF8.self) }
}
