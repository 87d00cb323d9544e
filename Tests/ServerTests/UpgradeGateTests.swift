@testable import Access
@testable import FramepipeServer
import Logging
import NIOCore
import NIOEmbedded
import NIOHTTP1
import Testing

/// The upgrade gate as a handler in NIO's embedded channel.
@Suite("Upgrade gate")
struct UpgradeGateTests {
    /// Counts the reads that reach the socket's end of the pipeline.
    final class ReadCounter: ChannelOutboundHandler, @unchecked Sendable {
        typealias OutboundIn = NIOAny
        var reads = 0
        func read(context: ChannelHandlerContext) {
            reads += 1
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
        let loop = EmbeddedEventLoop()
        let channel = EmbeddedChannel(loop: loop)
        try channel.pipeline.syncOperations.addHandlers([counter,
            UpgradeGateHandler(admission: admission, tickets: AdmissionTickets(), handshakeTimeout: .zero)])
        var headers = HTTPHeaders()
        headers.add(name: "upgrade", value: "websocket")
        headers.add(name: "connection", value: "upgrade")
        try channel.writeInbound(HTTPServerRequestPart.head(HTTPRequestHead(version: .http1_1, method: .GET, uri: "/ws/viewer", headers: headers)))
        // Judging: the verdict comes from a task, later.
        channel.read()
        #expect(counter.reads == 0, "no read while the upgrade is judged")
        // The verdict arrives on the loop; the held read goes out with it.
        let deadline = ContinuousClock.now + .seconds(5)
        while counter.reads == 0, ContinuousClock.now < deadline {
            // The verdict's task completes off the loop, and an embedded loop runs what
            // it posted only when told to; there is no event to await in between.
            try await Task.sleep(for: .milliseconds(1))
            loop.run()
        }
        #expect(counter.reads == 1)
        #expect(try channel.readInbound(as: HTTPServerRequestPart.self) != nil, "the admitted head goes on")
        channel.read()
        #expect(counter.reads == 2, "the gate is gone: reads pass")
        _ = try? channel.finish()
    }
}
