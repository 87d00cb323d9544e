import Foundation
import Testing

/// `deploy/framepipe.service` as systemd reads it: `systemd-analyze verify`
/// accepts it without a word, its sandbox scores as exposed as little as
/// `systemd-analyze security` can tell offline, and its environment file
/// names only variables `framepipe serve` reads.
@Suite("systemd unit")
struct ServiceUnitTests {
    static let unit = packageRoot.appendingPathComponent("deploy/framepipe.service")
    static let environment = packageRoot.appendingPathComponent("deploy/framepipe.env")
    static let analyze = URL(fileURLWithPath: "/usr/bin/systemd-analyze")

    /// The unit with its binary and environment file where this checkout has them
    /// (verify checks that ExecStart's program exists).
    static func installedCopy() throws -> TemporaryFile {
        let file = try TemporaryFile("framepipe.service")
        let text = try String(contentsOf: unit, encoding: .utf8)
            .replacingOccurrences(of: "/usr/local/bin/framepipe", with: packageRoot.appendingPathComponent(".build/debug/framepipe").path)
            .replacingOccurrences(of: "/etc/framepipe/framepipe.env", with: environment.path)
        try text.write(toFile: file.path, atomically: true, encoding: .utf8)
        return file
    }

    @Test func systemdAcceptsTheUnitWithoutAWarning() async throws {
        let copy = try Self.installedCopy()
        defer { copy.remove() }
        let result = try await runProcess(Self.analyze, ["verify", copy.path])
        #expect(result.status == 0, "\(result.err)")
        #expect(result.err.isEmpty && result.out.isEmpty, "systemd-analyze verify said: \(result.err)\(result.out)")
    }

    @Test func itIsSandboxedReloadsOnHangupAndReadsItsEnvironmentFile() async throws {
        let text = try String(contentsOf: Self.unit, encoding: .utf8)
        for line in ["DynamicUser=yes", "ProtectSystem=strict", "NoNewPrivileges=yes", "ProtectHome=yes", "PrivateTmp=yes",
                     "EnvironmentFile=/etc/framepipe/framepipe.env", "ExecReload=/bin/kill -HUP $MAINPID", "CapabilityBoundingSet="] {
            #expect(text.split(separator: "\n").contains(Substring(line)), "missing \(line)")
        }
        let copy = try Self.installedCopy()
        defer { copy.remove() }
        let result = try await runProcess(Self.analyze, ["security", "--offline=yes", copy.path])
        let summary = try #require(result.out.split(separator: "\n").last { $0.contains("Overall exposure level") }, "\(result.out)\(result.err)")
        let level = Double(summary.split(separator: ":").last!.trimmingCharacters(in: .whitespaces).split(separator: " ").first!) ?? 10
        #expect(level <= 2.0, "\(summary)")
    }

    @Test func theEnvironmentFileNamesOnlyVariablesServeReads() async throws {
        let help = try await runFramepipe(["serve", "--help"]).out
        let lines = try String(contentsOf: Self.environment, encoding: .utf8).split(separator: "\n")
        let names = lines.compactMap { line -> String? in
            let setting = line.hasPrefix("#") ? line.dropFirst() : line
            guard setting.hasPrefix("FRAMEPIPE_"), let equals = setting.firstIndex(of: "=") else { return nil }
            return String(setting[..<equals])
        }
        #expect(names.count >= 10)
        for name in names { #expect(help.contains("[\(name)]"), "framepipe serve does not read \(name)") }
    }
}
