import Pipeline
import WireProtocol

/// The viewers one frame goes to, in groups that are sent the same bytes
/// at the same pace: same format, rendition, stream naming and frame-rate
/// cap. The frame path encodes and works out pacing once per group; per
/// viewer it only offers the frame to its mailbox. Made once per stream
/// after any viewer changes (`RelayState.plan(for:)`), not per frame.
package struct FanOut: Sendable {
    package struct Group: Sendable {
        package let format: ViewerFormat
        package let rendition: RenditionKind
        /// `compat=patient_id`: the frame's header names the stream as `patient_id` too.
        package let namingPatient: Bool
        /// The policy's frame-rate cap for these viewers, if any.
        package let maxFPS: Double?
        package fileprivate(set) var targets: [FrameTarget]
    }

    package private(set) var groups: [Group] = []

    package init() {}

    /// Adds a viewer to the group it shares bytes and pace with, in the
    /// order groups are first met (so a plan reads the same every time).
    package mutating func add(_ target: FrameTarget, format: ViewerFormat, namingPatient: Bool) {
        if let index = groups.firstIndex(where: {
            $0.format == format && $0.rendition == target.rendition && $0.namingPatient == namingPatient && $0.maxFPS == target.maxFPS
        }) {
            groups[index].targets.append(target)
        } else {
            groups.append(Group(format: format, rendition: target.rendition, namingPatient: namingPatient, maxFPS: target.maxFPS,
                                targets: [target]))
        }
    }

    /// Every target, group after group. It allocates: for tests and descriptions, not the frame path.
    package var targets: [FrameTarget] { groups.flatMap(\.targets) }
}
