import Pipeline

/// Each viewer's four gauges (`framepipe_viewer_loss_percent`,
/// `_goodput_bytes_per_second`, `_rtt_seconds`, `_frame_age_p95_seconds`)
/// as plain numbers, written into the Prometheus text when it is scraped.
///
/// As swift-metrics gauges in the Prometheus registry they cost about 2 KB
/// a viewer (four gauge objects, their handlers, label arrays and the
/// registry's entries): a twentieth of an idle viewer's memory, for four
/// numbers set once a second. The text written is what the registry wrote
/// for them: one `# TYPE` line per family, `{viewer="…"}`, a value as
/// Swift spells a `Double`; and, as a gauge does, a figure that was not
/// measured in a sample (no TCP reading, no frame written) keeps the last
/// one, 0 until there is one.
struct ViewerGaugeTable {
    private struct Values {
        var lossPercent = 0.0
        var goodput = 0.0
        var rttSeconds = 0.0
        var ageP95Seconds = 0.0
    }

    private var byViewer: [String: Values] = [:]

    mutating func record(_ id: String, _ figures: RelayMetrics.ViewerFigures) {
        var values = byViewer[id] ?? Values()
        values.lossPercent = figures.lossPercent
        if let goodput = figures.goodput { values.goodput = goodput }
        if let rtt = figures.rtt { values.rttSeconds = rtt.seconds }
        if let age = figures.ageP95 { values.ageP95Seconds = Double(age) / 1000 }
        byViewer[id] = values
    }

    mutating func remove(_ id: String) { byViewer[id] = nil }

    /// The four families, viewers in order of their ids; nothing while no viewer was sampled.
    func write(into bytes: inout [UInt8]) {
        guard !byViewer.isEmpty else { return }
        let viewers = byViewer.sorted { $0.key < $1.key }
        let families: [(name: String, value: (Values) -> Double)] = [
            ("framepipe_viewer_loss_percent", \.lossPercent),
            ("framepipe_viewer_goodput_bytes_per_second", \.goodput),
            ("framepipe_viewer_rtt_seconds", \.rttSeconds),
            ("framepipe_viewer_frame_age_p95_seconds", \.ageP95Seconds),
        ]
        bytes.reserveCapacity(bytes.count + families.count * viewers.count * 64)
        for family in families {
            bytes.append(contentsOf: "# TYPE \(family.name) gauge\n".utf8)
            for (id, values) in viewers {
                bytes.append(contentsOf: family.name.utf8)
                bytes.append(contentsOf: #"{viewer=""#.utf8)
                Self.appendLabelValue(id, to: &bytes)
                bytes.append(contentsOf: #""} "#.utf8)
                Self.appendValue(family.value(values), to: &bytes)
                bytes.append(UInt8(ascii: "\n"))
            }
        }
    }

    /// A label value as the exposition format escapes it: backslash, double quote and newline.
    static func appendLabelValue(_ value: String, to bytes: inout [UInt8]) {
        for byte in value.utf8 {
            switch byte {
            case UInt8(ascii: "\\"): bytes.append(contentsOf: #"\\"#.utf8)
            case UInt8(ascii: "\""): bytes.append(contentsOf: #"\""#.utf8)
            case UInt8(ascii: "\n"): bytes.append(contentsOf: #"\n"#.utf8)
            default: bytes.append(byte)
            }
        }
    }

    /// A sample value; the format spells the non-finite ones `NaN`, `+Inf`, `-Inf`.
    static func appendValue(_ value: Double, to bytes: inout [UInt8]) {
        if value.isNaN {
            bytes.append(contentsOf: "NaN".utf8)
        } else if value.isInfinite {
            bytes.append(contentsOf: (value > 0 ? "+Inf" : "-Inf").utf8)
        } else {
            bytes.append(contentsOf: value.description.utf8)
        }
    }
}
