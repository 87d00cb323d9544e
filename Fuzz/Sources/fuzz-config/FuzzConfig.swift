import Pipeline
import Stages

/// `pipelines.json` loading: JSON parsing with positions, the checks
/// against every built-in stage's declaration, and building the typed
/// configurations. Any input must give a config or a ConfigError, never a crash.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    if let config = try? PipelineConfigLoader(registry: .builtIn).load(text: text) {
        for pipeline in config.pipelines { _ = pipeline.stages.count }
    }
    return 0
}
