import Foundation
@testable import FramepipeServer
@testable import Pipeline
@testable import Stages
import TestFixtures
import Testing

/// The package root, found from this file's path.
let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

/// Runs the built `framepipe` executable, returning exit code, stdout and stderr.
func runFramepipe(_ arguments: [String], in directory: URL = packageRoot) async throws -> (status: Int32, out: String, err: String) {
    try await runProcess(packageRoot.appendingPathComponent(".build/debug/framepipe"), arguments, in: directory)
}

/// Runs a program to its end, returning exit code, stdout and stderr.
func runProcess(_ executable: URL, _ arguments: [String], in directory: URL = packageRoot) async throws -> (status: Int32, out: String, err: String) {
    let result = try await ChildProcess.run(executable, arguments, in: directory)
    return (result.status, result.out, result.err)
}

@Suite("framepipe stages / check")
struct CLITests {
    @Test func documentedStageTableIsTheGeneratedOne() throws {
        let readme = try String(contentsOf: packageRoot.appendingPathComponent("docs/pipelines.md"), encoding: .utf8)
        let begin = try #require(readme.range(of: "<!-- stages-table:begin -->\n"))
        let end = try #require(readme.range(of: "\n<!-- stages-table:end -->"))
        #expect(String(readme[begin.upperBound..<end.lowerBound]) == StageListing.markdown(.builtIn),
                "docs/pipelines.md's stage table is stale: regenerate it with `framepipe stages --markdown`")
        let policies = try #require(readme.range(of: "<!-- policies-table:begin -->\n"))
        let policiesEnd = try #require(readme.range(of: "\n<!-- policies-table:end -->"))
        #expect(String(readme[policies.upperBound..<policiesEnd.lowerBound]) == StageListing.policiesMarkdown(.builtIn),
                "docs/pipelines.md's policy table is stale: regenerate it with `framepipe stages --policies-markdown`")
    }

    /// Grouped, every default said, every variable named by the one rule, and no example split mid-command.
    @Test func serveHelpIsGroupedAndNamesEachDefaultAndVariable() async throws {
        let help = try await runFramepipe(["serve", "--help"]).out
        for title in ["LISTENING AND TLS:", "PIPELINE:", "TIMEOUTS:", "LIMITS:", "ACCESS:", "CLUSTER:", "LOGGING:"] {
            #expect(help.contains(title), "no group \(title)")
        }
        // Each option's entry: from its "--name" to the next option.
        let entries = help.components(separatedBy: "\n  --").dropFirst().map { "--" + $0 }
        #expect(entries.count > 40)
        for entry in entries where !entry.hasPrefix("--help") {
            let flag = String(entry.prefix { $0 != " " && $0 != "\n" }.dropFirst(2))
            let variable = ServeEnvironment.variable(for: flag)
            let text = entry.split(separator: "\n").joined(separator: " ").split(separator: " ", omittingEmptySubsequences: true).joined(separator: " ")
            #expect(text.contains("[\(variable)]"), "--\(flag) does not name \(variable)")
            #expect(text.contains("Default"), "--\(flag) does not say its default")
        }
    }

    @Test(arguments: ["serve", "token", "revoke", "check", "stages"])
    func helpNeverSplitsACommandMidLine(_ command: String) async throws {
        let help = try await runFramepipe([command, "--help"]).out
        #expect(!help.split(separator: "\n").contains { $0.hasPrefix("--") }, "\(help)")
    }

    @Test func environmentVariablesFollowOneRuleAndTheOldNamesStillWork() throws {
        #expect(ServeEnvironment.variable(for: "max-viewers-per-token") == "FRAMEPIPE_MAX_VIEWERS_PER_TOKEN")
        let old = ServeEnvironment(variables: ["FRAMEPIPE_REDIS_URL": "redis://a", "FRAMEPIPE_ALLOWED_ORIGINS": "https://a,https://b"])
        #expect(old.string(nil, "redis") == "redis://a")
        #expect(old.list([], "allowed-origin") == ["https://a", "https://b"])
        let both = ServeEnvironment(variables: ["FRAMEPIPE_REDIS": "redis://new", "FRAMEPIPE_REDIS_URL": "redis://old"])
        #expect(both.string(nil, "redis") == "redis://new")
        #expect(both.string("redis://flag", "redis") == "redis://flag")
    }

    @Test func checkAcceptsTheShippedFile() async throws {
        let result = try await runFramepipe(["check", "pipelines.json"])
        #expect(result.status == 0)
        #expect(result.out == "pipelines.json: OK, 4 pipeline(s): standard (default), strict, passthrough, low-bandwidth\n")
    }

    @Test func checkListsEveryProblemAndExitsOne() async throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("bad-\(UUID()).json")
        try #"{"default": "standard", "pipelines": {"standard": {"stages": [{"stage": "size-limit"}, {"stage": "base64-validation"}, {"stage": "decode-check", "mode": "fulll"}, {"stage": "downscal"}, {"stage": "fan-out"}]}}}"#
            .write(to: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: file) }
        let result = try await runFramepipe(["check", file.path])
        #expect(result.status == 1)
        #expect(result.err == """
            \(file.path): 2 problems
              pipelines.standard.stages[2].mode: expected "header" or "full", got "fulll"
              pipelines.standard.stages[3].stage: unknown stage "downscal" (did you mean "downscale"?)

            """)
    }

    @Test func checkReportsAMissingFile() async throws {
        let result = try await runFramepipe(["check", "/nonexistent/pipelines.json"])
        #expect(result.status == 1)
        #expect(result.err.contains("/nonexistent/pipelines.json: 1 problem\n  (file): no such file"))
    }

    @Test func stagesListsEveryBuiltInAsJSON() async throws {
        let result = try await runFramepipe(["stages", "--json"])
        #expect(result.status == 0)
        guard case .array(let stages) = try JSONParser.parse(result.out.trimmingCharacters(in: .whitespacesAndNewlines)) else {
            Issue.record("not a JSON array"); return
        }
        #expect(stages.filter { $0["kind"] == .string("stage") }.compactMap { $0["name"]?.stringValue } == StageRegistry.builtIn.names)
        #expect(stages.filter { $0["kind"] == .string("delivery-policy") }.compactMap { $0["name"]?.stringValue } == ["goodput"],
                "delivery policies are listed too, with their parameters")
        let decodeCheck = try #require(stages.first { $0["name"] == .string("decode-check") })
        #expect(decodeCheck["parameters"].map { if case .array(let p) = $0 { p.count } else { 0 } } == 4)
    }

    @Test func stagesTextShowsDefaultsAndHelp() async throws {
        let result = try await runFramepipe(["stages"])
        #expect(result.out.contains("decode-check — Check the JPEG with libturbojpeg: header only, or a full decode"))
        #expect(result.out.contains("    mode: \"header\" | \"full\", default \"header\""))
        #expect(result.out.contains("fan-out (sink) — "))
    }
}
