import ArgumentParser
import Pipeline

/// The entry point shared by the `framepipe` executable and a user's own
/// executable: the same CLI and server, run with whatever stages the caller
/// registered.
///
/// ```
/// var registry = StageRegistry.builtIn
/// try registry.register(DropDuplicatesStage.self)
/// await Framepipe.main(registry: registry)
/// ```
public enum Framepipe {
    @TaskLocal static var registry = StageRegistry()

    public static func main(registry: StageRegistry, arguments: [String]? = nil) async {
        await $registry.withValue(registry) {
            await FramepipeCommand.main(arguments)
        }
    }
}

/// `framepipe`: the root command; its subcommands do the work.
struct FramepipeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "framepipe",
        abstract: "A live video-frame relay: streamers push JPEG frames, viewers watch every live stream.",
        subcommands: [ServeCommand.self, StagesCommand.self, CheckCommand.self, TokenCommand.self, RevokeCommand.self],
        defaultSubcommand: nil
    )
}
