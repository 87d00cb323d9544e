import Cluster
import Foundation
import Access
import RelayCore
import Hummingbird
import HummingbirdCore
import HummingbirdTLS
import HummingbirdWebSocket
import Logging
import NIOCore
import Pipeline
import WireProtocol
import ServiceLifecycle

/// The relay: HTTP and WebSocket endpoints on Hummingbird, the viewer hub,
/// housekeeping and the shutdown sequence, run as one service group.
///
/// ```
/// streamer ─ws─▶ StreamerConnection ─▶ PipelineRunner (per stream) ─▶ fan-out
///                                                                       │
///                                      ViewerHub (FrameSink) ◀──────────┘
///                                        │ latest-wins mailbox per viewer
///                                        ▼
///                ViewerChannelHandler on the event loop ─ws─▶ viewer
/// ```
public struct RelayServer: Sendable {
    /// How long a WebSocket whose Close the relay sent may take to answer
    /// before its connection is closed anyway.
    static let webSocketCloseTimeout = Duration.seconds(2)

    public let configuration: RelayConfiguration
    /// The pipelines file it runs, replaced whole by each reload.
    public let live: LiveConfiguration
    /// Where a reload re-reads the file; nil for pipelines given in code.
    public let source: PipelineSource?
    let logger: Logger

    /// The pipeline of streams no route matches (`--pipeline`, or the file's default).
    public var pipeline: PipelineDefinition { live.current.fallbackPipeline }

    public struct UnknownPipeline: Error, CustomStringConvertible {
        public let name: String
        public let known: [String]
        public var description: String { "no pipeline named \"\(name)\"; the file defines: \(known.joined(separator: ", "))" }
    }

    /// Auth is off and the relay was asked to listen beyond loopback.
    public struct InsecureListen: Error, CustomStringConvertible {
        public let host: String
        public var description: String {
            "refusing to listen on \(host) with auth off: anyone who can reach it could watch or inject streams. "
                + "Configure --jwt-secret-file or --jwt-public-key, listen on 127.0.0.1, or pass --insecure if a proxy in front does auth."
        }
    }

    /// `source`, when given, is the file `pipelines` was read from: SIGHUP
    /// and `POST /api/reload` read it again.
    public init(configuration: RelayConfiguration, pipelines: PipelineConfig, source: PipelineSource? = nil,
                logger: Logger = Logger(label: "framepipe")) throws {
        if !configuration.auth.isEnabled, !configuration.insecure, !configuration.listensOnLoopbackOnly {
            throw InsecureListen(host: configuration.host)
        }
        let name = configuration.pipeline ?? pipelines.defaultPipeline
        guard pipelines.pipeline(named: name) != nil else {
            throw UnknownPipeline(name: name, known: pipelines.pipelines.map(\.name))
        }
        self.configuration = configuration
        self.live = LiveConfiguration(pipelines, source: source?.path ?? "(given in code)", fallback: configuration.pipeline)
        self.source = source
        self.logger = logger
    }

    /// Runs until SIGTERM/SIGINT (then shuts down as the contract says) or
    /// until the task is cancelled. `onListening` gets the bound port.
    public func run(onListening: @escaping @Sendable (Int) async -> Void = { _ in }) async throws {
        let metrics = RelayMetrics(clustered: configuration.cluster != nil)
        let revocations = Revocations()
        // Publisher, then hub, then service: each is made with what it uses.
        let publisher = configuration.cluster.map { ClusterPublisher(nodeID: $0.nodeID, metrics: metrics, logger: self.logger) }
        let node = self.configuration.cluster?.nodeID ?? ProcessInfo.processInfo.hostName
        let clock = configuration.clock
        let webhooks = configuration.webhooks.map { EventWebhooks(settings: $0, node: node, metrics: metrics, clock: clock, logger: self.logger) }
        let limits = configuration.limits
        let hub = ViewerHub(logger: logger, metrics: metrics, cluster: publisher, makePolicy: live.current.config.delivery.makePolicy,
                            events: webhooks, limits: CountLimits(maxStreams: limits.maxStreams, maxViewers: limits.maxViewers,
                                                                  maxViewersPerToken: limits.maxViewersPerToken),
                            clock: configuration.clock)
        let cluster = try configuration.cluster.map {
            try ClusterService(settings: $0, live: self.live, hub: hub, publisher: publisher!, metrics: metrics,
                               revocations: revocations, logger: self.logger)
        }
        let authority = configuration.auth.isEnabled
            ? try await TokenAuthority(settings: configuration.auth, revocations: revocations, clock: configuration.clock, logger: logger) : nil
        if authority == nil {
            logger.notice("auth is off: anyone who can reach this address can watch and publish", metadata: ["host": "\(configuration.host)"])
        }
        let expiryWarning = self.configuration.auth.expiryWarning
        let access = authority.map { SocketAccess(authority: $0, sessions: TokenSessions(clock: clock), expiryWarning: expiryWarning) }
        if let access {
            let logger = logger
            revocations.onChange {
                let ended = access.sessions.endRevoked(revocations)
                if ended > 0 { logger.notice("revocation ended open sockets", metadata: ["sockets": "\(ended)"]) }
            }
        }
        let audit = configuration.auditLogPath.map { AuditLog(path: $0, metrics: metrics, logger: self.logger) }
        try audit?.checkWritable()
        let refusals = RefusalRecorder(logger: logger, audit: audit)
        let tickets = AdmissionTickets()
        let admission = UpgradeAdmission(
            originPolicy: configuration.originPolicy, trustedProxies: configuration.trustedProxies, refusals: refusals,
            authority: authority, limits: configuration.limits,
            ledger: AddressLedger(limits: configuration.limits) { [clock = configuration.clock] in clock.instant },
            relay: RelayAdmissionFacts(hub: hub, live: live), metrics: metrics, clock: configuration.clock, logger: logger)

        // Fail closed: a path in any but its canonical spelling is refused
        // first, the public routes are one explicit list, and every other
        // route carries its token check in its route group.
        let router = Router(context: RelayRequestContext.self)
        let trustedProxies = configuration.trustedProxies
        router.add(middleware: CanonicalPathMiddleware(metrics: metrics, refusals: refusals, trustedProxies: trustedProxies))
        var tls: TLSFiles?
        if let certificate = configuration.tlsCertificatePath, let key = configuration.tlsKeyPath {
            tls = try TLSFiles(certificate: certificate, key: key)
        }
        let reloader = ConfigurationReloader(live: live, source: source, tls: tls, hub: hub, metrics: metrics, logger: logger)
        let feeds = StreamFeed.Services(hub: hub, live: live, metrics: metrics, audit: audit, clock: configuration.clock)
        let sources = SourceService(live: live, services: feeds, leases: cluster ?? SoleNodeLeases(), maxFrameBytes: configuration.maxMessageBytes,
                                    clock: configuration.clock, logger: logger)
        let readiness = Readiness(hub: hub, cluster: cluster, sources: sources, readyWithoutRedis: configuration.readyWithoutRedis)
        let routes = HTTPRoutes(hub: hub, metrics: metrics, live: live, reloader: reloader, cluster: cluster, logger: logger, audit: audit,
                                maxFrameBytes: configuration.maxMessageBytes, access: access, sources: sources,
                                clock: configuration.clock)
        PublicRoutes(pages: try WebPages(), health: { routes.healthJSON() }, readiness: readiness).add(to: router)
        routes.add(to: ProtectedRoutes(router: router, authority: authority, metrics: metrics, refusals: refusals,
                                       trustedProxies: trustedProxies))
        let webSocketRouter = Router(context: RelayRequestContext.self)
        webSocketRouter.add(middleware: CanonicalPathMiddleware(metrics: metrics, refusals: refusals, trustedProxies: trustedProxies))
        addWebSocketRoutes(to: webSocketRouter, hub: hub, metrics: metrics, tickets: tickets, access: access, audit: audit)

        // Both limits must follow the configured message size, or hummingbird-
        // websocket's 16 KiB default refuses every real frame. No
        // permessage-deflate: JPEG does not compress, so it would only cost CPU.
        let webSocketResponder = webSocketRouter.buildResponder()
        let channelConfiguration = HTTP1WebSocketUpgradeChannel.Configuration(
            ws: .init(maxFrameSize: configuration.maxMessageBytes, autoPing: .disabled, closeTimeout: Self.webSocketCloseTimeout))
        ConnectionTypesWarmUp.run(
            HTTP1WebSocketUpgradeChannel(responder: { _, _, _ in }, webSocketResponder: webSocketResponder, configuration: channelConfiguration),
            logger: logger)
        let upgrade = HTTPServerBuilder { responder in
            GuardedUpgradeChannel(
                base: HTTP1WebSocketUpgradeChannel(responder: responder, webSocketResponder: webSocketResponder, configuration: channelConfiguration),
                admission: admission, tickets: tickets)
        }
        let server: HTTPServerBuilder
        if let tls {
            server = try .tls(upgrade, tlsConfiguration: tls.configuration())
        } else {
            server = upgrade
        }
        let configuration = configuration
        let logger = logger
        let pipelineName = pipeline.name
        let routeCount = live.current.config.routes.count
        let app = Application(
            router: router,
            server: server,
            configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "framepipe"),
            onServerRunning: { channel in
                let port = channel.localAddress?.port ?? configuration.port
                let http = configuration.usesTLS ? "https" : "http"
                let ws = configuration.usesTLS ? "wss" : "ws"
                logger.notice("framepipe listening", metadata: [
                    "dashboard": "\(http)://\(configuration.host):\(port)/",
                    "pipeline": "\(pipelineName)",
                    "routes": "\(routeCount)",
                    "streamers": "\(ws)://\(configuration.host):\(port)/ws/stream/{stream_id}",
                    "viewers": "\(ws)://\(configuration.host):\(port)/ws/viewer",
                    "api": "\(http)://\(configuration.host):\(port)/api/streams",
                ])
                readiness.markListening()
                await onListening(port)
            },
            logger: logger)
        // A group stops in reverse order: the shutdown sequence (which queues
        // the cluster's goodbyes; during its drain delay the relay's rules
        // still run), then housekeeping, then the pulled cameras, then the cluster link (which
        // flushes the goodbyes), then the HTTP server, then the webhooks, then the audit log.
        // The audit log stops last, so the connections' closing lines are written.
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = audit.map { [.init(service: $0)] } ?? []
        // Webhooks stop after the shutdown sequence, whose stream_ended events they still post.
        if let webhooks { services.append(.init(service: webhooks)) }
        // Tokens keep ending sockets while the server drains them.
        if let access { services.append(.init(service: access.sessions)) }
        services.append(.init(service: app))
        if let cluster { services.append(.init(service: cluster)) }
        if let jwks = authority?.jwks {
            services.append(.init(service: JWKSRefresher(keys: jwks, interval: configuration.auth.jwksRefresh, clock: configuration.clock)))
        }
        if authority != nil, let file = configuration.auth.revocationFile {
            services.append(.init(service: RevocationFileWatcher(path: file, revocations: revocations, logger: logger, clock: configuration.clock)))
        }
        services += [
            .init(service: ReloadOnHangup(reloader: reloader)),
            // Cameras are let go after the shutdown sequence has ended their streams,
            // and before the cluster link stops, so their leases are given up in Redis.
            .init(service: sources),
            // Housekeeping before the shutdown sequence, so it stops after it: pings, idle
            // closes, stall drops and policy reviews go on while the relay drains.
            .init(service: HousekeepingService(hub: hub, metrics: metrics, configuration: configuration, logger: logger)),
            .init(service: ShutdownCoordinator(hub: hub, readiness: readiness, clock: configuration.clock, logger: logger,
                                               drainDelay: configuration.drainDelay)),
        ]
        var groupConfiguration = ServiceGroupConfiguration(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        // A bound on the whole shutdown: the drain delay, the viewers' drain,
        // and time for the cluster's goodbyes and the last audit lines; a
        // service that hangs past it is cancelled rather than keep the relay
        // from exiting (and systemd from restarting it).
        groupConfiguration.maximumGracefulShutdownDuration = configuration.drainDelay + Self.shutdownAllowance
        let group = ServiceGroup(configuration: groupConfiguration)
        try await group.run()
    }

    /// How long a graceful shutdown may take beyond `--drain-delay`.
    static let shutdownAllowance: Duration = .seconds(15)

    private func addWebSocketRoutes(to router: Router<RelayRequestContext>, hub: ViewerHub, metrics: RelayMetrics,
                                    tickets: AdmissionTickets, access: SocketAccess?, audit: AuditLog?) {
        let authRequired = access != nil
        let configuration = configuration
        let live = live
        let logger = logger
        // A browser that sent its token as a subprotocol needs one echoed, or it drops the socket.
        let upgradeHeaders: @Sendable (Request) -> HTTPFields = { request in
            TokenLocation.offersSubprotocol(request.headers[.secWebSocketProtocol]) ? [.secWebSocketProtocol: TokenLocation.subprotocol] : [:]
        }
        router.ws("/ws/stream/{id}") { request, context in
            // Refused with HTTP 400 before the upgrade.
            guard let id = context.parameters.get("id"), StreamID.isValid(Substring(id)) else {
                throw HTTPError(.badRequest, message: StreamID.rule)
            }
            do throws(ViewerOptions.Invalid) {
                _ = try StreamerOptions(query: request.uri.query ?? "")
            } catch {
                throw HTTPError(.badRequest, message: error.description)
            }
            context.upgradeAccepted()
            return .upgrade(upgradeHeaders(request))
        } onUpgrade: { inbound, outbound, context in
            context.requestContext.releaseWebSocketHandler()
            let id = context.requestContext.parameters.get("id")!
            // The gate has judged the upgrade; without its ticket, nothing runs.
            guard let ticket = tickets.take(for: context.requestContext.channel), !authRequired || ticket.grant != nil else {
                try? await outbound.close(.policyViolation, reason: "unauthorized")
                return
            }
            await StreamerConnection(streamID: id, hub: hub, live: live, metrics: metrics,
                                     configuration: configuration, grant: ticket.grant, access: access,
                                     client: ticket.client, audit: audit,
                                     options: (try? StreamerOptions(query: context.request.uri.query ?? "")) ?? StreamerOptions(),
                                     logger: logger)
                .run(inbound: inbound, outbound: outbound, context: context.requestContext)
        }
        router.ws("/ws/viewer") { request, context in
            do throws(ViewerOptions.Invalid) {
                _ = try ViewerOptions(query: request.uri.query ?? "")
            } catch {
                throw HTTPError(.badRequest, message: error.description)
            }
            context.upgradeAccepted()
            return .upgrade(upgradeHeaders(request))
        } onUpgrade: { inbound, outbound, context in
            context.requestContext.releaseWebSocketHandler()
            guard let query = try? ViewerOptions(query: context.request.uri.query ?? "") else { return }
            guard let ticket = tickets.take(for: context.requestContext.channel), !authRequired || ticket.grant != nil else {
                try? await outbound.close(.policyViolation, reason: "unauthorized")
                return
            }
            let grant = ticket.grant
            await ViewerConnection(hub: hub, metrics: metrics, format: query.format, streams: query.streams,
                                   quality: query.quality, flow: query.flow, credits: query.credits,
                                   namesPatient: query.namesPatient ?? configuration.viewersNamePatient, scope: grant?.scope ?? .all, tokenID: grant?.tokenID,
                                   limits: configuration.limits, grant: grant, access: access,
                                   client: ticket.client, audit: audit, clock: configuration.clock, logger: logger)
                .run(inbound: inbound, outbound: outbound, context: context.requestContext)
        }
    }
}
