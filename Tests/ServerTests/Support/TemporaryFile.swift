import Foundation

/// A path in a fresh temporary directory of its own, for a test that needs
/// a file the relay reads or writes; `remove()` deletes the directory.
struct TemporaryFile {
    let directory: URL
    let path: String

    init(_ name: String) throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("framepipe-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        path = directory.appendingPathComponent(name).path
    }

    func remove() { try? FileManager.default.removeItem(at: directory) }
}
