import DropDuplicates
import FramepipeServer
import Pipeline
import Stages

// framepipe with one extra stage: the built-ins plus drop-duplicates.
var registry = StageRegistry.builtIn
try registry.register(DropDuplicatesStage.self)
await Framepipe.main(registry: registry)
