import Foundation
import Synchronization

/// Runs a program to its end without holding a thread while it runs.
///
/// `waitUntilExit` and `readDataToEndOfFile` block the calling thread, and
/// in an async test that thread is one of the few of Swift's cooperative
/// pool (two on a 2-core machine): a `redis-cli --cluster create` taking
/// seconds halved what every other test running beside it could do, and a
/// relay's timers there fired late enough to fail a test that is right.
public enum ChildProcess {
    public struct Result: Sendable {
        public let status: Int32
        public let out: String
        public let err: String
    }

    public static func run(_ executable: URL, _ arguments: [String], in directory: URL? = nil) async throws -> Result {
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        if let directory { process.currentDirectoryURL = directory }
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        let collected = Collected()
        // Read as it comes: a child that fills a pipe's buffer would otherwise wait for us forever.
        out.fileHandleForReading.readabilityHandler = { collected.append($0.availableData, error: false) }
        err.fileHandleForReading.readabilityHandler = { collected.append($0.availableData, error: true) }
        let status: Int32 = try await withCheckedThrowingContinuation { continuation in
            process.terminationHandler = { continuation.resume(returning: $0.terminationStatus) }
            do {
                try process.run()
            } catch {
                process.terminationHandler = nil
                continuation.resume(throwing: error)
            }
        }
        for (pipe, isError) in [(out, false), (err, true)] {
            pipe.fileHandleForReading.readabilityHandler = nil
            // The child has exited: what is left in the pipe is read at once.
            collected.append(pipe.fileHandleForReading.readDataToEndOfFile(), error: isError)
        }
        return collected.result(status)
    }

    private final class Collected: Sendable {
        private let data = Mutex<(out: Data, err: Data)>((Data(), Data()))

        func append(_ bytes: Data, error: Bool) {
            data.withLock { if error { $0.err.append(bytes) } else { $0.out.append(bytes) } }
        }

        func result(_ status: Int32) -> Result {
            data.withLock { Result(status: status, out: String(decoding: $0.out, as: UTF8.self), err: String(decoding: $0.err, as: UTF8.self)) }
        }
    }
}
