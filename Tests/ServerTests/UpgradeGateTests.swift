@testable import Access
@testable import FramepipeServer
import Logging
import NIOCore
import NIOEmbedded
import NIOHTTP1
import Synchronization
import TestFixtures
import Testing

/// The upgrade gate as a handler in NIO's thread-safe testing channel: the
/// verdict comes from a task on another thread, as it does in the relay.
@Suite("Upgrade gate")
struct UpgradeGateTests {
    /// Counts the reads that reach the socket's end of the pipeline.
    final class ReadCounter: ChannelOutboundHandler, Sendable {
        typealias OutboundIn = NIOAny
        private let count = Mutex(0)
        let changes = ChangeSignal()
        var reads: Int { count.withLock { $0 } }
        func read(context: ChannelHandlerContext) {
            count.withLock { $0 += 1 }
            changes.changed()
            context.read()
        }
    }

    /// While a request is judged nothing more is read from the socket, so a
    /// client that keeps sending meanwhile is held back by TCP, not buffered.
    @Test func nothingIsReadWhileAnUpgradeIsJudgedAndReadingResumesOnceAdmitted() async throws {
        let logger = Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }
        let metrics = RelayMetrics()
        let admission = UpgradeAdmission(originPolicy: OriginPolicy(), refusals: RefusalRecorder(logger: logger, audit: nil), authority: nil,
                                         limits: RelayLimits.unlimited, ledger: AddressLedger(limits: .unlimited),
                                         relay: RelayAdmissionFacts(hub: ViewerHub(logger: logger, metrics: metrics), live: nil),
                                         metrics: metrics, clock: SystemRelayClock(), logger: logger)
        let counter = ReadCounter()
        let channel = NIOAsyncTestingChannel()
        var headers = HTTPHeaders()
        headers.add(name: "upgrade", value: "websocket")
        headers.add(name: "connection", value: "upgrade")
        let head = HTTPServerRequestPart.head(HTTPRequestHead(version: .http1_1, method: .GET, uri: "/ws/viewer", headers: headers))
        // The head and a read in one turn of the loop: the verdict, which comes
        // from a task and then onto the loop, cannot come between them.
        let readsWhileJudged = try await channel.testingEventLoop.executeInContext {
            try channel.pipeline.syncOperations.addHandlers([counter,
                UpgradeGateHandler(admission: admission, tickets: AdmissionTickets(), handshakeTimeout: .zero)])
            channel.pipeline.fireChannelRead(head)
            channel.read()
            return counter.reads
        }
        #expect(readsWhileJudged == 0, "no read while the upgrade is judged")
        // The verdict arrives on the loop; the held read goes out with it.
        #expect(await counter.changes.wait(timeout: TestDeadline.event) { counter.reads > 0 })
        #expect(counter.reads == 1)
        #expect(try await channel.readInbound(as: HTTPServerRequestPart.self) != nil, "the admitted head goes on")
        let readsOnceAdmitted = try await channel.testingEventLoop.executeInContext {
            channel.read()
            return counter.reads
        }
        #expect(readsOnceAdmitted == 2, "the gate is gone: reads pass")
        _ = try? await channel.finish()
    }
}
