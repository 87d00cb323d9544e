import Foundation
import Logging
import NIOCore
import NIOEmbedded
@testable import Pipeline
@testable import RelayCore
import Testing
import TestFixtures

/// What a viewer sends and is sent in reply (pong, errors, acks) takes the
/// viewer's mailbox lock only: a dashboard's control messages never wait
/// for the hub's lock, which fan-out, housekeeping and the API take.
@Suite("Viewer control path")
struct ViewerControlPathTests {
    /// Runs `work` on another thread while this one holds the hub's lock;
    /// its result if it finished before the lock was let go, else nil.
    static func whileTheHubIsLocked<R: Sendable>(_ hub: ViewerHub, _ work: @escaping @Sendable () -> R) -> R? {
        let outcome = Outcome<R>(), done = DispatchSemaphore(value: 0)
        return hub.locked.withLockedValue { _ in
            Thread.detachNewThread {
                outcome.value = work()
                done.signal()
            }
            // Only a failing run waits this long: a passing one is woken by the work's end.
            return done.wait(timeout: .now() + TestDeadline.event.seconds) == .success ? outcome.value : nil
        }
    }

    @Test func aReplyToAViewerDoesNotWaitForTheHubsLock() throws {
        let (hub, _) = ViewerHubTests.hub()
        let viewer = try #require(ViewerHubTests.viewer(hub))
        _ = ViewerHubTests.controlTypes(viewer)  // viewer_connected
        #expect(Self.whileTheHubIsLocked(hub) { hub.send(to: viewer, WireMessage.pong(serverTime: 1)) } != nil)
        #expect(ViewerHubTests.controlTypes(viewer) == ["pong"])
    }

    @Test func anAckDoesNotWaitForTheHubsLock() throws {
        let (hub, _) = ViewerHubTests.hub()
        let session = try #require(ViewerHubTests.connect(hub, "P-1"))
        let added = try hub.addViewer(format: .binary, streams: nil, quality: .full, writer: ViewerHubTests.writer(hub.metrics, credits: 1),
                                      remoteAddress: "test",
                                      eventLoop: EmbeddedEventLoop(), close: {})
        let viewer = try #require(added)
        hub.publish(ViewerHubTests.frame("P-1", seq: session.firstSeq))
        #expect(viewer.mailbox.poll() != nil)  // viewer_connected
        #expect(viewer.mailbox.poll() != nil)  // stream_started
        _ = try #require(viewer.mailbox.poll(), "the frame, taking the one credit")
        let acked = Self.whileTheHubIsLocked(hub) { hub.ack(viewer, streamID: "P-1", seq: session.firstSeq) }
        #expect(acked == true, "the ack, made while the hub was locked, returned the credit of a frame the relay wrote")
    }
}

/// A result handed from another thread: written before the semaphore's signal, read after its wait.
private final class Outcome<R>: @unchecked Sendable { var value: R? }
