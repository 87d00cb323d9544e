import ArgumentParser

/// `framepipe-bench`: benchmarks that print figures (never timed unit tests:
/// the machines here are shared and noisy).
@main
struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "framepipe-bench",
        abstract: "framepipe benchmarks.",
        subcommands: [PipelineBenchmark.self, LoadBenchmark.self, WatchBenchmark.self, MultipartBenchmark.self])
}
