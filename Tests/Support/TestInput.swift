import Testing

/// A test argument shown escaped in the runner's output. Inputs holding
/// newlines or carriage returns (bad JSON, bad base64, broken RESP) would
/// otherwise split the one line the runner prints per test case.
public struct TestInput: Sendable, CustomTestStringConvertible, ExpressibleByStringLiteral {
    public let text: String
    public init(stringLiteral text: String) { self.text = text }
    public var testDescription: String { text.debugDescription }
}
