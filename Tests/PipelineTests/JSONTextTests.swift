@testable import Pipeline
import PropertyBased
import Testing
import TestSupport

@Suite("JSON text")
struct JSONTextTests {
    @Test func writesCompactTextWithEveryEscape() {
        let value = JSONValue.object([
            ("a", .array([.number(1), .number(2.5), .number(-3), .string("q\"\u{1}\\é\n\r\t\u{1f}😀")])),
            ("b", .object([("c", .null)])),
            ("d", .bool(true)), ("e", .bool(false)), ("f", .array([])), ("g", .object([])),
        ])
        #expect(value.jsonText == #"{"a": [1, 2.5, -3, "q\"\u0001\\é\n\r\t\u001f😀"], "b": {"c": null}, "d": true, "e": false, "f": [], "g": {}}"#)
    }

    /// A document written member by member reads as the same tree written whole.
    @Test func membersWrittenOneByOneGiveTheTreesText() {
        var json = JSONWriter()
        json.array { json in
            json.object { json in
                json.member("id", "v-1")
                json.member("slow", false)
                json.member("count", 42)
                json.member("rtt_ms", 0.5)
                json.member("p95", nil)
                json.key("views")
                json.array { json in
                    json.object { $0.member("stream_id", "cam \"1\"") }
                    json.object { _ in }
                }
                json.key("a\tb")
                json.value(.array([.number(1), .null]))
            }
            json.string("end")
        }
        let tree = JSONValue.array([
            .object([("id", .string("v-1")), ("slow", .bool(false)), ("count", .number(42)), ("rtt_ms", .number(0.5)), ("p95", .null),
                     ("views", .array([.object([("stream_id", .string("cam \"1\""))]), .object([])])),
                     ("a\tb", .array([.number(1), .null]))]),
            .string("end"),
        ])
        #expect(String(decoding: json.bytes, as: UTF8.self) == tree.jsonText)
        #expect(tree.jsonText.hasPrefix(#"[{"id": "v-1", "slow": false, "count": 42, "rtt_ms": 0.5, "p95": null, "views": [{"stream_id": "cam \"1\""}, {}], "a\tb": [1, null]}"#))
    }

    /// Whole numbers are written as integers, digit for digit what `String` gives.
    @Test func wholeNumbersAreWrittenAsTheirDecimalDigits() async {
        let wholes = Gen<Int64>.int64(in: -999_999_999_999_999...999_999_999_999_999)
        await propertyCheck(count: 2000, input: wholes) { n in
            #expect(JSONValue.number(Double(n)).jsonText == String(n))
        }
        #expect([0, -0.0, 9, 10, -10, 1e15 - 1].map { JSONValue.number($0).jsonText } == ["0", "0", "9", "10", "-10", "999999999999999"])
    }

    /// Characters that need escaping, ones that do not, and every UTF-8 length.
    static let scalars: [Unicode.Scalar] = (0...0x21).compactMap(Unicode.Scalar.init) + ["\\", "a", "~", "\u{7f}", "é", "€", "😀"]

    @Test func anyStringQuotedParsesBackToItselfWithNoRawControlByte() async {
        let strings = Gen<Int>.int(in: 0...(Self.scalars.count - 1)).array(of: 0...40).map { indices in
            var s = String.UnicodeScalarView()
            for index in indices { s.append(Self.scalars[index]) }
            return String(s)
        }
        await propertyCheck(count: 1000, input: strings) { s in
            let quoted = JSONValue.quoted(s)
            #expect((try? JSONParser.parse(quoted)) == .string(s))
            #expect(!quoted.utf8.contains { $0 < 0x20 })
            // The same bytes inside a document as on their own.
            #expect(JSONValue.array([.string(s), .string(s)]).jsonText == "[\(quoted), \(quoted)]")
        }
    }
}
