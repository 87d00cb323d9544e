import Foundation
@testable import FramepipeServer
import Logging
@testable import Pipeline
import Synchronization
import Testing

/// `--log-format json`: what a log shipper reads.
@Suite("JSON log lines")
struct JSONLogTests {
    @Test func oneObjectALineWithTheMetadataAsFields() throws {
        let lines = Mutex<[String]>([])
        var logger = Logger(label: "framepipe") { label in
            JSONLogHandler(label: label, level: .info) { line in lines.withLock { $0.append(line) } }
        }
        logger[metadataKey: "stream_id"] = "P-ICU-4"
        logger.notice("stream \"ended\"\nbadly", metadata: ["reason": "timeout", "message": "shadowed", "frames": ["1", "2"]])
        logger.debug("below the level")
        let written = lines.withLock { $0 }
        #expect(written.count == 1)
        let line = try #require(written.first)
        #expect(line.hasSuffix("\n") && line.dropLast().contains("\n") == false)
        let json = try JSONParser.parse(line)
        #expect(json["level"] == .string("notice"))
        #expect(json["message"] == .string("stream \"ended\"\nbadly"))
        #expect(json["label"] == .string("framepipe"))
        #expect(json["stream_id"] == .string("P-ICU-4") && json["reason"] == .string("timeout"))
        #expect(json["meta_message"] == .string("shadowed"))
        #expect(json["frames"] == .array([.string("1"), .string("2")]))
        #expect(json["time"]?.stringValue?.hasSuffix("Z") == true)
    }
}
