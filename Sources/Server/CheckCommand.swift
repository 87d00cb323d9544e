import ArgumentParser
import Pipeline

/// `framepipe check`: validates a pipelines file and lists every problem.
struct CheckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Validate a pipelines file; exit 1 listing every problem with its JSON path.")

    @Argument(help: "The pipelines file.")
    var file = "pipelines.json"

    func run() throws {
        do {
            let config = try ConfigFile.load(path: file, registry: Framepipe.registry)
            let names = config.pipelines.map { $0.name == config.defaultPipeline ? "\($0.name) (default)" : $0.name }
            var summary = "\(file): OK, \(config.pipelines.count) pipeline(s): \(names.joined(separator: ", "))"
            if !config.sources.isEmpty {
                summary += "; pulls \(config.sources.count) camera(s): " + config.sources.map { "\($0.streamID) ← \($0.url)" }.joined(separator: ", ")
            }
            ConsoleOutput.out(summary)
        } catch {
            ConsoleOutput.err("\(error)")
            throw ExitCode(1)
        }
    }
}
