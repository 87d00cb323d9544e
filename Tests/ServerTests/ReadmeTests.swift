import Foundation
import Testing

/// The README is what a newcomer reads first: its layout table and its
/// links must not drift from the tree as targets and pages come and go.
@Suite("README")
struct ReadmeTests {
    let readme: String

    init() throws {
        readme = try String(contentsOf: packageRoot.appendingPathComponent("README.md"), encoding: .utf8)
    }

    @Test func theLayoutTableNamesEverySourceDirectory() throws {
        let sources = packageRoot.appendingPathComponent("Sources")
        let directories = try FileManager.default.contentsOfDirectory(atPath: sources.path).filter { name in
            var isDirectory: ObjCBool = false
            return FileManager.default.fileExists(atPath: sources.appendingPathComponent(name).path, isDirectory: &isDirectory)
                && isDirectory.boolValue
        }
        #expect(!directories.isEmpty)
        for name in directories.sorted() {
            #expect(readme.contains("`Sources/\(name)`"), "README's layout table does not name Sources/\(name)")
        }
    }

    @Test func everyRelativeLinkLeadsToAFile() throws {
        let links = readme.matches(of: /\]\(([^)#:\s]+)(#[^)]*)?\)/).map { String($0.1) }
        #expect(links.contains("docs/protocol.md"))
        for link in Set(links).sorted() {
            #expect(FileManager.default.fileExists(atPath: packageRoot.appendingPathComponent(link).path),
                    "README links to \(link), which is not in the repository")
        }
    }
}
