import Foundation

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
        // Output to files, not pipes: a pipe needs a reader while the child
        // runs (a FileHandle readability handler, a dispatch source, whose
        // closing was suspected in crashes inside libdispatch in CI runs).
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("framepipe-child-\(UUID())")
        let outURL = base.appendingPathExtension("out"), errURL = base.appendingPathExtension("err")
        _ = FileManager.default.createFile(atPath: outURL.path, contents: nil)
        _ = FileManager.default.createFile(atPath: errURL.path, contents: nil)
        defer {
            try? FileManager.default.removeItem(at: outURL)
            try? FileManager.default.removeItem(at: errURL)
        }
        let out = try FileHandle(forWritingTo: outURL), err = try FileHandle(forWritingTo: errURL)
        process.standardOutput = out
        process.standardError = err
        let status: Int32 = try await withCheckedThrowingContinuation { continuation in
            process.terminationHandler = { continuation.resume(returning: $0.terminationStatus) }
            do {
                try process.run()
            } catch {
                process.terminationHandler = nil
                continuation.resume(throwing: error)
            }
        }
        try? out.close()
        try? err.close()
        return Result(status: status, out: (try? String(contentsOf: outURL, encoding: .utf8)) ?? "",
                      err: (try? String(contentsOf: errURL, encoding: .utf8)) ?? "")
    }
}
