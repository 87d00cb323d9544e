import Foundation
import TestFixtures

/// A real slow link for a test: a network namespace joined to this host by
/// a veth pair, the host end shaped with `tc ... tbf` (netem is not
/// available on these kernels; tbf is). The relay listens on `hostAddress`;
/// a viewer run with `inNamespace` reaches it only through the shaped end.
/// `remove()` deletes the namespace and links, and is safe to call twice.
final class ShapedLink: Sendable {
    let namespace: String
    let hostInterface: String
    let hostAddress: String
    let namespaceAddress: String

    /// Why a shaped link cannot be made here, or nil if it can (root, `ip`, `tc`).
    static let unavailableReason: String? = {
        guard geteuid() == 0 else { return "needs root for ip netns and tc (CI runs as root)" }
        for tool in ["/usr/sbin/ip", "/usr/sbin/tc"] where !FileManager.default.isExecutableFile(atPath: tool) && !FileManager.default.isExecutableFile(atPath: tool.replacingOccurrences(of: "/usr/sbin", with: "/sbin")) {
            return "\(tool) is missing (Debian: iproute2)"
        }
        return nil
    }()

    struct Failed: Error, CustomStringConvertible {
        let description: String
    }

    /// Makes the link, shaped to `rate` (tc syntax: 2mbit, 500kbit).
    init(rate: String) throws {
        let tag = String(UInt32.random(in: 0..<UInt32.max), radix: 36)
        namespace = "fp-test-\(tag)"
        hostInterface = "fpt\(tag.prefix(8))h"
        let nsInterface = "fpt\(tag.prefix(8))n"
        let subnet = Int.random(in: 1...250)
        hostAddress = "10.253.\(subnet).1"
        namespaceAddress = "10.253.\(subnet).2"
        do {
            try Self.run(["ip", "netns", "add", namespace])
            try Self.run(["ip", "link", "add", hostInterface, "type", "veth", "peer", "name", nsInterface])
            try Self.run(["ip", "link", "set", nsInterface, "netns", namespace])
            try Self.run(["ip", "addr", "add", "\(hostAddress)/30", "dev", hostInterface])
            try Self.run(["ip", "link", "set", hostInterface, "up"])
            try Self.run(["ip", "netns", "exec", namespace, "ip", "addr", "add", "\(namespaceAddress)/30", "dev", nsInterface])
            try Self.run(["ip", "netns", "exec", namespace, "ip", "link", "set", nsInterface, "up"])
            try Self.run(["tc", "qdisc", "add", "dev", hostInterface, "root", "tbf", "rate", rate, "burst", "16kb", "latency", "200ms"])
        } catch {
            remove()
            throw error
        }
    }

    deinit { remove() }

    func remove() {
        _ = try? Self.run(["ip", "link", "del", hostInterface])
        _ = try? Self.run(["ip", "netns", "del", namespace])
    }

    /// Runs a program inside the namespace, behind the shaped link, to its
    /// end; started at once, awaited without holding a thread.
    func inNamespace(_ arguments: [String]) -> Task<ChildProcess.Result, any Error> {
        let command = ["ip", "netns", "exec", namespace] + arguments
        return Task { try await ChildProcess.run(URL(fileURLWithPath: "/usr/bin/env"), command) }
    }

    /// `ip` and `tc`, which return at once; synchronous, so `deinit` can clean up with it.
    @discardableResult
    static func run(_ arguments: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let said = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let complaint = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw Failed(description: "\(arguments.joined(separator: " ")) failed: \(complaint)")
        }
        return said
    }
}
