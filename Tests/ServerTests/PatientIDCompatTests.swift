@testable import FramepipeServer
@testable import Pipeline
import Testing
@testable import RelayCore

/// The clients of the relay framepipe replaces: its dashboards read a
/// stream's id as `patient_id`. With `compat=patient_id` (or the relay's
/// `--viewer-compat patient_id`) every viewer message that names a stream
/// names it both ways, and the old flow runs end to end unchanged
/// (docs/migrating.md).
@Suite("patient_id compatibility")
struct PatientIDCompatTests {
    @Test func theOldFlowRunsEndToEndWithPatientIDInEveryMessageNamingAStream() async throws {
        try await withRelay { relay in
            let old = try await relay.viewer("compat=patient_id")
            let current = try await relay.viewer()
            // The old streamer's message: the original text frame, with its own timestamp.
            let streamer = try await relay.streamer("P-DHE-001")
            streamer.send(TestFrames.text(0, timestamp: 1_732_500_000_123))
            let started = try await old.waitFor(type: "stream_started", stream: "P-DHE-001")
            #expect(started["patient_id"] == .string("P-DHE-001"))
            let frame = try await old.waitFor(type: "frame", stream: "P-DHE-001")
            #expect(frame["patient_id"] == .string("P-DHE-001"))
            #expect(frame["timestamp"] == .number(1_732_500_000_123), "forwarded as is")
            #expect(frame["frame"]?.stringValue?.hasPrefix("data:image/jpeg;base64,") == true)
            await streamer.close()
            let ended = try await old.waitFor(type: "stream_ended", stream: "P-DHE-001")
            #expect(ended["patient_id"] == .string("P-DHE-001") && ended["reason"] == .string("closed"))
            // A viewer that did not ask sees the contract's messages, unchanged.
            try await current.waitFor(type: "stream_ended", stream: "P-DHE-001")
            #expect(!current.json.contains { $0["patient_id"] != nil })
        }
    }

    @Test func theRelaysDefaultAppliesUnlessAViewerOptsOutAndBinaryHeadersFollowIt() async throws {
        try await withRelay(.test { $0.viewersNamePatient = true }) { relay in
            let byDefault = try await relay.viewer("format=binary")
            let optedOut = try await relay.viewer("format=binary&compat=none")
            let streamer = try await relay.streamer("bed-2")
            streamer.send(TestFrames.jpeg(0))
            try await byDefault.eventually("a frame") { byDefault.binaryFrames.count == 1 }
            try await optedOut.eventually("a frame") { optedOut.binaryFrames.count == 1 }
            #expect(byDefault.binaryFrames[0].header["patient_id"] == .string("bed-2"))
            #expect(byDefault.binaryFrames[0].jpeg == TestFrames.jpeg(0))
            #expect(optedOut.binaryFrames[0].header["patient_id"] == nil)
            #expect(try await byDefault.waitFor(type: "stream_started", stream: "bed-2")["patient_id"] == .string("bed-2"))
            let refused = try await RawHTTP.get(port: relay.port, path: "/ws/viewer?compat=patient", upgrade: true)
            #expect(refused.status == 400 && refused.text.contains("compat must be patient_id or none"))
        }
    }

    @Test func namingThePatientAddsTheFieldBesideTheStreamIDAndNothingElse() {
        #expect(WireMessage.namingPatient(WireMessage.streamEnded("P-1", reason: .timeout))
                    == #"{"type":"stream_ended","stream_id":"P-1","patient_id":"P-1","reason":"timeout"}"#)
        #expect(WireMessage.namingPatient(WireMessage.ping) == WireMessage.ping)
    }
}
