import Foundation
import NIOConcurrencyHelpers
import Pipeline
import Synchronization

/// The pipelines file the relay runs now, swapped whole by a reload.
///
/// It exists so a reload is one atomic step that every reader sees the same
/// way: a streamer's connection compares generations at each frame and
/// moves to the new pipeline there, the cluster builds relayed runners from
/// it, and the API reports which file, when and which generation.
public final class LiveConfiguration: Sendable {
    /// One loaded file.
    public struct Generation: Sendable {
        /// 1 for the file read at start, then one more per applied reload.
        public let number: Int
        public let config: PipelineConfig
        public let loadedAt: Date
        /// Where it was read from (a path, or "(inline)" for a user's own text).
        public let source: String
        /// `--pipeline`: the pipeline for streams no route matches, instead of the file's default.
        public let fallback: String?

        /// The pipeline `streamID` runs under this generation.
        public func pipeline(forStream streamID: String) -> PipelineDefinition {
            config.pipeline(forStream: streamID, fallback: fallback)
        }

        /// The pipeline for streams no route matches.
        public var fallbackPipeline: PipelineDefinition { config.unroutedPipeline(fallback: fallback) }
    }

    private let box: NIOLockedValueBox<Generation>
    /// The current generation's number, readable without the lock: every
    /// frame of every stream asks it.
    private let generationNumber = Atomic<Int>(1)
    /// Whoever follows reloads (the sources it pulls): told each new generation.
    private let followers = NIOLockedValueBox<[UInt64: AsyncStream<Generation>.Continuation]>([:])
    private let nextFollower = Atomic<UInt64>(0)

    public init(_ config: PipelineConfig, source: String, fallback: String? = nil, loadedAt: Date = Date()) {
        box = NIOLockedValueBox(Generation(number: 1, config: config, loadedAt: loadedAt, source: source, fallback: fallback))
    }

    public var current: Generation { box.withLockedValue { $0 } }

    /// The generation number alone: one atomic load, no lock, no copy.
    public var number: Int { generationNumber.load(ordering: .acquiring) }

    /// Makes `config` the running configuration; returns its generation.
    @discardableResult
    public func replace(with config: PipelineConfig, source: String, loadedAt: Date = Date()) -> Generation {
        let generation = box.withLockedValue { current in
            current = Generation(number: current.number + 1, config: config, loadedAt: loadedAt, source: source, fallback: current.fallback)
            // Published after the generation it names is in place, so a reader that sees it finds it.
            generationNumber.store(current.number, ordering: .releasing)
            return current
        }
        for follower in followers.withLockedValue({ Array($0.values) }) { follower.yield(generation) }
        return generation
    }

    /// Each generation from now on (the current one first), newest kept when the follower lags.
    package func generations() -> AsyncStream<Generation> {
        let (stream, continuation) = AsyncStream.makeStream(of: Generation.self, bufferingPolicy: .bufferingNewest(1))
        let id = nextFollower.add(1, ordering: .relaxed).newValue
        // A follower that stops is forgotten, not yielded to for the relay's life.
        continuation.onTermination = { [followers] _ in followers.withLockedValue { _ = $0.removeValue(forKey: id) } }
        followers.withLockedValue { followers in
            followers[id] = continuation
            continuation.yield(current)
        }
        return stream
    }
}
