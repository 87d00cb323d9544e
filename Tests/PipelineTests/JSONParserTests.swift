@testable import Pipeline
import PropertyBased
import Testing
import TestSupport

@Suite("JSON parser")
struct JSONParserTests {
    @Test func parsesEveryValueKindKeepingKeyOrder() throws {
        let value = try JSONParser.parse(#"{"z": [1, -2.5e3, true, false, null], "a": "x\u00e9\n\"", "m": {}}"#)
        guard case .object(let members) = value else { Issue.record("not an object"); return }
        #expect(members.map(\.key) == ["z", "a", "m"])
        #expect(value["z"] == .array([.number(1), .number(-2500), .bool(true), .bool(false), .null]))
        #expect(value["a"] == .string("xé\n\""))
    }

    @Test func surrogatePairsDecode() throws {
        #expect(try JSONParser.parse(#""\ud83d\ude00""#) == .string("😀"))
    }

    @Test(arguments: [
        ("{\"a\": 1,}", "line 1, column 9: unexpected '}', expected a member name in double quotes"),
        ("[1 2]", "line 1, column 4: unexpected '2', expected ',' or ']'"),
        ("{\"a\": tru}", "line 1, column 7: invalid literal, expected 'true'"),
        ("\"abc", "line 1, column 1: unterminated string"),
        ("01", "line 1, column 1: leading zero in number"),
        ("{\"a\":1, \"a\":2}", "line 1, column 9: duplicate member name \"a\""),
        ("[1]\n x", "line 2, column 2: unexpected 'x' after the end of the document"),
        ("", "line 1, column 1: unexpected end of input, expected a value"),
        ("\"\\ud800\"", "line 1, column 8: lone surrogate in \\u escape"),
    ] as [(TestInput, String)])
    func syntaxErrorsNameLineAndColumn(input: TestInput, expected: String) {
        let text = input.text
        #expect(throws: JSONParser.SyntaxError.self) { try JSONParser.parse(text) }
        do { _ = try JSONParser.parse(text) } catch { #expect(error.description == expected) }
    }

    @Test func deepNestingIsRefusedNotCrashing() {
        let text = String(repeating: "[", count: 100_000)
        #expect(throws: JSONParser.SyntaxError.self) { try JSONParser.parse(text) }
    }

    @Test func compactTextRoundTrips() throws {
        let value = try JSONParser.parse(#"{"a": [1, 2.5, "q\"\u0001"], "b": {"c": null}}"#)
        #expect(try JSONParser.parse(value.jsonText) == value)
    }

    @Test func randomBytesNeverCrash() async {
        await propertyCheck(count: 2000, input: Gen<UInt8>.value(in: 0...255).array(of: 0...200)) { bytes in
            _ = bytes.withUnsafeBufferPointer { try? JSONParser.parse($0) }
        }
    }
}
