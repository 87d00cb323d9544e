import FramepipeServer
import Stages

// The stock relay: the library's CLI and server with the built-in stages.
await Framepipe.main(registry: .builtIn)
