import Cluster
import Access
import RelayCore
import Foundation
import Hummingbird
import Logging
import NIOCore
import Pipeline

/// The plain HTTP endpoints: health, metrics, and the JSON API the admin
/// page and operators read. All but health need a token when auth is on.
struct HTTPRoutes {
    let hub: ViewerHub
    let metrics: RelayMetrics
    let live: LiveConfiguration
    let reloader: ConfigurationReloader
    var cluster: ClusterService? = nil
    var logger = Logger(label: "framepipe")
    var audit: AuditLog? = nil
    var maxFrameBytes = 8 << 20
    /// With auth on: where an MJPEG client's token is leased, so its expiry or revocation ends the response.
    var access: SocketAccess? = nil
    /// The cameras the relay pulls, for their rows in `/api/streams`.
    var sources: SourceService? = nil
    var clock: any RelayClock = SystemRelayClock()

    /// Every route here needs a token (with auth on): they are added only
    /// through `ProtectedRoutes`. `/healthz` is public and added by `PublicRoutes`.
    func add(to routes: ProtectedRoutes) {
        let allStreams = routes.requiring(.viewerOfAllStreams)
        allStreams.get("/metrics") { _, _ in
            Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                     body: .init(byteBuffer: metrics.render()))
        }
        allStreams.get("/api/viewers") { _, _ in Response.json(viewersJSON()) }
        routes.requiring(.anyRole).get("/api/session") { _, context in json(sessionJSON(context.grant)) }
        let viewer = routes.requiring(.viewer)
        viewer.get("/api/streams") { request, context in
            json(streamsJSON(scope: context.grant?.scope ?? .all, history: request.uri.queryParameters["history"] == "1"))
        }
        viewer.get("/api/pipelines") { _, _ in json(pipelinesJSON()) }
        // A POST only: a reload changes the relay, so a link or a prefetch must not set one off.
        routes.requiring(.admin).post("/api/reload") { _, _ in
            let outcome = reloader.reload(trigger: "api")
            return json(reloadJSON(outcome), status: outcome.applied ? .ok : .unprocessableContent)
        }
        let mjpeg = MJPEGConnection(hub: hub, metrics: metrics, audit: audit, access: access, logger: logger)
        viewer.get("/api/streams/{id}/mjpeg") { request, context in
            mjpeg.response(streamID: context.parameters.get("id") ?? "", request: request, context: context)
        }
        let ingest = HTTPIngest(services: StreamFeed.Services(hub: hub, live: live, metrics: metrics, audit: audit, clock: clock),
                                maxFrameBytes: maxFrameBytes, access: access, logger: logger)
        routes.requiring(.streamer).post("/api/streams/{id}/ingest") { request, context in
            await ingest.response(streamID: context.parameters.get("id") ?? "", request: request, context: context)
        }
        viewer.get("/api/streams/{id}/snapshot.jpg") { request, context in
            let id = context.parameters.get("id") ?? ""
            let options: MJPEGConnection.Options
            do throws(MJPEGConnection.Options.Invalid) {
                options = try MJPEGConnection.Options(request: request)
            } catch {
                return json(.object([("error", .string(error.reason)), ("stream_id", .string(id))]), status: .badRequest)
            }
            // A stream the token does not cover does not exist, as far as its holder can tell.
            let (known, owner, frame) = (context.grant?.scope ?? .all).allows(id) ? hub.latestFrame(of: id) : (false, nil, nil)
            guard let frame, let picture = SnapshotPicture.of(frame, width: options.width, height: options.height) else {
                let reason = !known ? "no such stream"
                    : owner.map { "stream is served by node \($0); none of its frames has reached this node (no viewer here watches it)" }
                    ?? "stream has no valid frame yet"
                return json(.object([("error", .string(reason)), ("stream_id", .string(id))]), status: .notFound)
            }
            return Response(status: .ok, headers: [.contentType: "image/jpeg", .cacheControl: "no-cache, no-store, must-revalidate",
                                                   .init("Pragma")!: "no-cache", .init("X-Rendition")!: picture.rendition],
                            body: .init(byteBuffer: picture.jpeg))
        }
    }

    /// Always 200 while the process serves: without Redis a node still serves
    /// its own streams, so it says "degraded" rather than failing a load
    /// balancer's check and losing its local viewers too.
    func healthJSON() -> JSONValue {
        let counts = hub.connectionCounts
        var members: [(key: String, value: JSONValue)] = [
            ("status", .string("ok")), ("pipeline", .string(live.current.fallbackPipeline.name)),
            ("streams", .number(Double(counts.streams))), ("viewers", .number(Double(counts.viewers))),
        ]
        if let cluster {
            let status = cluster.status
            let formatter = ISO8601DateFormatter()
            if status.broker != .connected { members[0].value = .string("degraded") }
            var broker: [(key: String, value: JSONValue)] = [
                ("state", .string(status.broker.rawValue)), ("since", .string(formatter.string(from: status.since))),
                ("redis", .string(cluster.settings.redis.description)), ("node", .string(cluster.settings.nodeID)),
                ("subscriptions", .number(Double(status.subscriptions))),
                ("remote_streams", .number(Double(hub.remoteStreamCount))),
            ]
            if cluster.settings.redis.usesSentinel, let master = status.master { broker.append(("master", .string(master))) }
            if let error = status.lastError { broker.append(("last_error", .string(error))) }
            members.append(("cluster", .object(broker)))
        }
        return .object(members)
    }

    /// With `history`, each stream's last quarter hour (fps and capture age every 10 s), for the admin page's charts.
    /// A stream pulled from a camera carries `source`; a listed camera whose
    /// stream is not live (lost, connecting, pulled by a node that has not
    /// started it) is a row of its own with `live: false`.
    func streamsJSON(scope: StreamScope = .all, history: Bool = false) -> JSONValue {
        let generation = live.current
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        var pulled = (sources?.statuses ?? [:]).filter { scope.allows($0.key) }
        let live: [JSONValue] = hub.streamSnapshots(scope: scope).map { s in
            var row: [(key: String, value: JSONValue)] = [
                ("id", .string(s.id)), ("live", .bool(true)),
                ("started", s.startedAt.map { .string(formatter.string(from: $0)) } ?? .null),
                ("frames", .number(Double(s.frames))),
                ("fps", .number((s.fps * 10).rounded() / 10)),
                ("viewers", .number(Double(s.viewers))),
                ("drops", .number(Double(s.drops))),
                ("errors", .number(Double(s.errors))),
                ("pipeline", .string(s.pipeline ?? generation.pipeline(forStream: s.id).name)),
                ("node", s.owner.map(JSONValue.string) ?? cluster.map { .string($0.settings.nodeID) } ?? .null),
                // Per kind a stage judges (`picture`), its state now: ok, frozen, dark, covered.
                ("health", .object(s.health.keys.sorted().map { kind in
                    (kind, .object(WireMessage.healthFields(s.health[kind]!).filter { $0.key != "kind" }))
                })),
                // Capture to receipt, once its frames carry capture times the relay can place on its clock.
                ("ingest_delay_ms", s.ingestDelay.map { .number(Double($0)) } ?? .null),
                ("ingest_delay_p95_ms", s.ingestDelayP95.map { .number(Double($0)) } ?? .null),
            ]
            if history { row.append(("history", Self.historyJSON(s.history))) }
            if let source = pulled.removeValue(forKey: s.id) { row.append(("source", source.json(formatter: formatter))) }
            return .object(row)
        }
        let notLive: [JSONValue] = pulled.values.sorted { $0.streamID < $1.streamID }.map { source in
            .object([("id", .string(source.streamID)), ("live", .bool(false)),
                     ("pipeline", .string(generation.pipeline(forStream: source.streamID).name)),
                     ("source", source.json(formatter: formatter))])
        }
        return .array(live + notLive)
    }

    /// A stream's last quarter hour, oldest first: fps, and capture-to-receipt p95 (null where unknown).
    static func historyJSON(_ history: StreamHistory) -> JSONValue {
        let ages: [JSONValue] = history.ageP95.map { age in age.map { .number(Double($0)) } ?? .null }
        return .object([
            ("interval_s", .number(StreamHistory.interval.seconds)),
            ("fps", .array(history.fps.map { .number(($0 * 10).rounded() / 10) })),
            ("ingest_delay_p95_ms", .array(ages)),
        ])
    }

    /// Every viewer, written as it is read: with a thousand viewers a tree
    /// built first cost as much as the text (`JSONWriter`).
    func viewersJSON() -> JSONWriter {
        let viewers = hub.viewerSnapshots()
        var json = JSONWriter(capacity: 320 * viewers.count + 2)
        json.array { json in
            for snapshot in viewers {
                let v = snapshot.listing
                json.object { json in
                    json.member("id", v.id)
                    json.key("streams")
                    if let streams = v.streams { json.array { for id in streams.sorted() { $0.string(id) } } } else { json.string("all") }
                    json.member("format", v.format.rawValue)
                    json.member("quality", v.quality.rawValue)
                    json.member("receiving", v.receivesLow ? "low" : "full")
                    json.member("slow", v.slow)
                    json.member("delivered", snapshot.statistics.delivered)
                    json.member("replaced", snapshot.statistics.replaced)
                    json.member("loss_percent", (snapshot.statistics.lossPercent * 10).rounded() / 10)
                    json.member("bytes_written", snapshot.statistics.bytesWritten)
                    // What the link under the socket does (TCP_INFO); null where there is no TCP socket.
                    json.member("goodput_bytes_per_second", snapshot.statistics.link.last == nil ? nil : snapshot.statistics.link.goodput.rounded())
                    json.member("rtt_ms", snapshot.statistics.link.rtt.map { ($0.seconds * 10_000).rounded() / 10 })
                    json.member("unsent_bytes", snapshot.statistics.link.notSentBytes)
                    json.member("frame_age_p95_ms", snapshot.statistics.ages.p95.map(Double.init))
                    // Per stream: what the viewer says it shows, and the rendition the policy sends it.
                    json.key("views")
                    json.array { json in
                        for view in v.views {
                            json.object { json in
                                json.member("stream_id", view.stream)
                                json.member("visible", view.view?.visible ?? true)
                                json.member("width", view.view?.width.map(Double.init))
                                json.member("height", view.view?.height.map(Double.init))
                                json.member("rendition", view.rendition)
                                json.member("rendition_width", view.width.map(Double.init))
                                json.member("rendition_height", view.height.map(Double.init))
                                // The policy's frame-rate cap, where even the smallest rendition is more than the link carries.
                                json.member("max_fps", view.maxFPS)
                            }
                        }
                    }
                }
            }
        }
        return json
    }

    /// Who the caller is, so a page knows whether to ask for a token.
    func sessionJSON(_ grant: AccessGrant?) -> JSONValue {
        guard let grant else { return .object([("auth", .string("off"))]) }
        return .object([
            ("auth", .string("on")), ("subject", .string(grant.subject)), ("roles", .array(grant.roles.map(\.rawValue).sorted().map(JSONValue.string))),
            ("streams", .array(grant.scope.patterns.map(JSONValue.string))),
            ("expires", .number(grant.expires.timeIntervalSince1970.rounded())),
        ])
    }

    func pipelinesJSON() -> JSONValue {
        let drops = metrics.dropsByStage
        let generation = live.current
        let pipelines = generation.config
        let active = generation.fallbackPipeline
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        let delivery = pipelines.delivery
        var policy: [(key: String, value: JSONValue)] = [("policy", .string(delivery.declaration.name))]
        for spec in delivery.declaration.parameters {
            if let value = delivery.parameters.values[spec.name] ?? spec.defaultValue { policy.append((spec.name, value)) }
        }
        return .object([
            ("generation", .number(Double(generation.number))),
            ("loaded_at", .string(formatter.string(from: generation.loadedAt))),
            ("source", .string(generation.source)),
            ("default", .string(pipelines.defaultPipeline)),
            ("active", .string(active.name)),
            ("routes", .array(pipelines.routes.map { .object([("match", .string($0.match)), ("pipeline", .string($0.pipeline))]) })),
            ("delivery", .object(policy)),
            ("pipelines", .array(pipelines.pipelines.map { p in
                .object([
                    ("name", .string(p.name)),
                    ("description", .string(p.description)),
                    ("stages", .array(p.stages.map { stage in
                        var members: [(key: String, value: JSONValue)] = [("stage", .string(stage.declaration.name))]
                        for spec in stage.declaration.parameters {
                            if let value = stage.parameters.values[spec.name] ?? spec.defaultValue { members.append((spec.name, value)) }
                        }
                        if p.name == active.name { members.append(("drops", .number(Double(drops[stage.declaration.name] ?? 0)))) }
                        return .object(members)
                    })),
                ])
            })),
        ])
    }

    /// What `POST /api/reload` answers: the generation running now and, when refused, every problem with its JSON path.
    func reloadJSON(_ outcome: ConfigurationReloader.Outcome) -> JSONValue {
        .object([
            ("applied", .bool(outcome.applied)),
            ("generation", .number(Double(outcome.generation))),
            ("source", .string(live.current.source)),
            ("tls_reloaded", .bool(outcome.tlsReloaded)),
            ("problems", .array(outcome.problems.map { .object([("path", .string($0.path)), ("reason", .string($0.reason))]) })),
        ])
    }

    func json(_ value: JSONValue, status: HTTPResponse.Status = .ok) -> Response { .json(value, status: status) }
}
