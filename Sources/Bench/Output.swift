import Foundation

/// Where benchmark figures go: standard output, one line at a time.
enum Output {
    static func line(_ text: String) {
        FileHandle.standardOutput.write(Data((text + "\n").utf8))
    }
}
