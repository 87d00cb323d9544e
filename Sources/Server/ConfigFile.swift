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
            let reason: String
            if FileManager.default.fileExists(atPath: path) {
                reason = "cannot read the file as UTF-8 text (\(error.localizedDescription))"
            } else if path.hasPrefix("/") {
                reason = "no such file"
            } else {
                // A relative path is read from the working directory, which is
                // not the checkout when the relay is started from elsewhere.
                let directory = FileManager.default.currentDirectoryPath
                reason = "no such file in \(directory) (the working directory); give its full path with --config, or start framepipe in the directory that holds it"
            }
            throw ConfigError(source: path, problems: [ConfigProblem(path: "(file)", reason: reason)])
        }
        return try PipelineConfigLoader(registry: registry).load(text: text, source: path)
    }
}
