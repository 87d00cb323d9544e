import NIOCore
@testable import Pipeline
import PropertyBased
import Testing
import TestSupport

@Suite("Strict base64")
struct Base64Tests {
    @Test func roundTripsAnyBytes() async {
        await propertyCheck(count: 500, input: Gen<UInt8>.value(in: 0...255).array(of: 0...300)) { bytes in
            let encoded = Base64.encode(ByteBuffer(bytes: bytes))
            #expect(Base64.decode(encoded).map { Array($0.readableBytesView) } == bytes)
        }
    }

    @Test func knownVectors() {
        #expect(Base64.encode(ByteBuffer(string: "foobar")) == "Zm9vYmFy")
        #expect(Base64.encode(ByteBuffer(string: "fo")) == "Zm8=")
        #expect(Base64.decode("Zm8=").map { String(buffer: $0) } == "fo")
        #expect(Base64.decode("Zg==").map { String(buffer: $0) } == "f")
        #expect(Base64.decode("").map(\.readableBytes) == 0)
    }

    @Test(arguments: ["Zm8", "Zm9v=", "Zm=8", "Z===", "Zm9v YmFy", "Zm9v\nYmFy", "Zm9-", "Zm9_", "Zm9=Zm9v", "Zh==", "Zm9=", "====", "Zm8=="] as [TestInput])
    func rejectsNonStrictInput(input: TestInput) {
        let text = input.text
        #expect(Base64.decode(text) == nil)
    }

    @Test func randomTextNeverCrashes() async {
        await propertyCheck(count: 2000, input: Gen<UInt8>.value(in: 0...255).array(of: 0...64)) { bytes in
            _ = bytes.withUnsafeBufferPointer { Base64.decode(bytes: $0) }
        }
    }
}
