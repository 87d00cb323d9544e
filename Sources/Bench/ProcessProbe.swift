import Pipeline
import Foundation

/// CPU time and memory of a process, read from /proc, so the load tool can
/// report the server's cost (and its own, to show when it is the limit).
struct ProcessProbe {
    let pid: Int32

    struct Sample {
        var cpuSeconds: Double
        var rssKB: Int
        var peakRSSKB: Int
        var at: ContinuousClock.Instant
    }

    static let ticksPerSecond = Double(sysconf(Int32(_SC_CLK_TCK)))

    func sample() -> Sample? {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
              let close = stat.lastIndex(of: ")")
        else { return nil }
        // Fields after the command name: state is field 3; utime and stime are 14 and 15.
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 13, let utime = Double(fields[11]), let stime = Double(fields[12]) else { return nil }
        func kb(_ key: String) -> Int {
            guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix(key) }) else { return 0 }
            return Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "0") ?? 0
        }
        return Sample(cpuSeconds: (utime + stime) / Self.ticksPerSecond, rssKB: kb("VmRSS:"), peakRSSKB: kb("VmHWM:"), at: .now)
    }

    /// CPU use between two samples, in percent of one core.
    static func cpuPercent(from a: Sample, to b: Sample) -> Double {
        let wall = (b.at - a.at).seconds
        return wall > 0 ? (b.cpuSeconds - a.cpuSeconds) / wall * 100 : 0
    }
}

