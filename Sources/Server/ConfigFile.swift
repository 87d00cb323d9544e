import Foundation
import Pipeline

/// Reads a pipelines file from disk, turning I/O failures into the same
/// `ConfigError` shape as validation problems.
public enum ConfigFile {
    public static func load(path: String, registry: StageRegistry) throws(ConfigError) -> PipelineConfig {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            let reason = FileManager.default.fileExists(atPath: path)
                ? "cannot read the file as UTF-8 text (\(error.localizedDescription))"
                : "no such file"
            throw ConfigError(source: path, problems: [ConfigProblem(path: "(file)", reason: reason)])
        }
        return try PipelineConfigLoader(registry: registry).load(text: text, source: path)
    }
}
