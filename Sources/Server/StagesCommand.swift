import ArgumentParser
import Pipeline

/// `framepipe stages`: documents every registered stage from its declaration.
struct StagesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stages",
        abstract: "List every registered stage and delivery policy with its parameters, defaults and docs.")

    @Flag(help: "Print JSON instead of text.")
    var json = false

    @Flag(help: "Print the Markdown table of stages used in docs/pipelines.md.")
    var markdown = false

    @Flag(help: "Print the Markdown table of delivery policies used in docs/pipelines.md.")
    var policiesMarkdown = false

    func run() throws {
        let registry = Framepipe.registry
        if json {
            ConsoleOutput.out(StageListing.json(registry))
        } else if policiesMarkdown {
            ConsoleOutput.out(StageListing.policiesMarkdown(registry))
        } else if markdown {
            ConsoleOutput.out(StageListing.markdown(registry))
        } else {
            ConsoleOutput.out(StageListing.text(registry))
        }
    }
}
