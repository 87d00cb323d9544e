import TestFixtures
import NIOCore
@testable import Pipeline
@testable import Stages
import Testing
import TestSupport

@Suite("base64-validation")
struct Base64ValidationStageTests {
    @Test func decodesAValidDataURLOnce() {
        var frame = textFrame(TestPattern.dataURL(Fixtures.jpeg))
        #expect(makeStage(Base64ValidationStage.self).processed(&frame) == .pass)
        #expect(frame.jpeg == Fixtures.jpeg)
    }

    @Test func binaryFramesPassUntouched() {
        var frame = binaryFrame(Fixtures.png)
        #expect(makeStage(Base64ValidationStage.self).processed(&frame) == .pass)
        #expect(frame.jpeg.map { Array($0.readableBytesView) } == Fixtures.png)
    }

    @Test(arguments: [
        ("hello", "not_data_url"),
        ("", "not_data_url"),
        ("data:image/jpeg,/9j/4AAQ", "not_base64"),
        ("data:image/png;base64,iVBORw0KGgo=", "mime_not_allowed"),
        ("data:text/html;base64,PGI+", "mime_not_allowed"),
        ("data:image/jpeg;base64,/9j/4AA", "bad_base64"),
        ("data:image/jpeg;base64,/9j/4A==AA", "bad_base64"),
        ("data:image/jpeg;base64,/9j/4AA*", "bad_base64"),
        ("data:image/jpeg;base64,/9j/ 4AA", "bad_base64"),
        ("data:image/jpeg;base64,/9j/4AAQ\n", "bad_base64"),
        ("data:image/jpeg;base64,/9j-4AAQ", "bad_base64"),
    ] as [(TestInput, String)])
    func rejectsMalformedDataURLs(input: TestInput, code: String) {
        let text = input.text
        var frame = textFrame(text)
        #expect(rejectionCode(makeStage(Base64ValidationStage.self).processed(&frame)) == code)
        #expect(frame.jpeg == nil)
    }

    @Test func configuredMIMETypesAreAccepted() {
        var stage = makeStage(Base64ValidationStage.self, ["mimeTypes": .array([.string("image/jpeg"), .string("image/png")])])
        var frame = textFrame("data:image/PNG;base64,iVBORw0KGgo=")
        #expect(stage.process(&frame) == .pass)
    }
}
