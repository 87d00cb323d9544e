@testable import FramepipeServer
import Hummingbird
import HummingbirdWebSocket
import Logging
import Testing

/// The relay builds one connection's pipeline before it listens, so its
/// first connections do not race to make the same types (see `ConnectionTypesWarmUp`).
@Suite("Connection types warm-up")
struct ConnectionTypesWarmUpTests {
    @Test func aPlainRequestGoesThroughTheWholeNotUpgradingPath() {
        let router = Router(context: RelayRequestContext.self)
        let base = HTTP1WebSocketUpgradeChannel(responder: { _, _, _ in }, webSocketResponder: router.buildResponder(),
                                                configuration: .init())
        #expect(ConnectionTypesWarmUp.run(base, logger: Logger(label: "test")))
    }
}
