import Foundation

/// The CLI's answer to the person who ran it (listings, check results);
/// events go through swift-log instead.
enum ConsoleOutput {
    static func out(_ text: String) {
        FileHandle.standardOutput.write(Data((text.hasSuffix("\n") ? text : text + "\n").utf8))
    }

    static func err(_ text: String) {
        FileHandle.standardError.write(Data((text.hasSuffix("\n") ? text : text + "\n").utf8))
    }
}
