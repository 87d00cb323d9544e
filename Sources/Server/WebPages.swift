import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// The dashboard (`/`), camera page (`/stream`) and stream health page
/// (`/admin`), with their scripts and stylesheet, served from the files in
/// `Sources/Server/Web` (no CDN, no build step). Files are read once at
/// start; a missing one is a packaging bug and fails the start.
struct WebPages {
    struct Asset {
        let body: ByteBuffer
        let contentType: String
    }

    let assets: [String: Asset]

    struct MissingAsset: Error, CustomStringConvertible {
        let name: String
        var description: String { "web asset \(name) is missing from the FramepipeServer resource bundle" }
    }

    static let files: [(String, String)] = [
        ("index.html", "text/html; charset=utf-8"), ("stream.html", "text/html; charset=utf-8"), ("admin.html", "text/html; charset=utf-8"),
        ("style.css", "text/css; charset=utf-8"), ("connection.js", "text/javascript; charset=utf-8"),
        ("dashboard.js", "text/javascript; charset=utf-8"), ("camera.js", "text/javascript; charset=utf-8"),
        ("admin.js", "text/javascript; charset=utf-8"), ("auth.js", "text/javascript; charset=utf-8"),
        ("uplink.js", "text/javascript; charset=utf-8"),
    ]

    init() throws {
        var assets: [String: Asset] = [:]
        for (name, type) in Self.files {
            let parts = name.split(separator: ".")
            guard let url = Bundle.module.url(forResource: String(parts[0]), withExtension: String(parts[1]), subdirectory: "Web"),
                  let data = try? Data(contentsOf: url)
            else { throw MissingAsset(name: name) }
            assets[name] = Asset(body: ByteBuffer(bytes: data), contentType: type)
        }
        self.assets = assets
    }

    /// Headers on every page: scripts only from this origin (none inline),
    /// no MIME sniffing, no referrer leaking stream ids.
    static let securityHeaders: HTTPFields = [
        .contentSecurityPolicy: "default-src 'self'; script-src 'self'; connect-src 'self'; img-src 'self' blob: data:; media-src 'self' blob: mediastream:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'",
        HTTPField.Name("X-Content-Type-Options")!: "nosniff",
        HTTPField.Name("Referrer-Policy")!: "no-referrer",
    ]

    func add(to router: Router<RelayRequestContext>) {
        for (path, file) in [("/", "index.html"), ("/stream", "stream.html"), ("/admin", "admin.html")] {
            router.get(RouterPath(path)) { _, _ in response(file) }
        }
        router.get("/assets/{name}") { _, context in
            guard let name = context.parameters.get("name"), name.hasSuffix(".js") || name.hasSuffix(".css"), assets[name] != nil else {
                return Response(status: .notFound)
            }
            return response(name)
        }
    }

    func response(_ name: String) -> Response {
        let asset = assets[name]!
        var headers = Self.securityHeaders
        headers[.contentType] = asset.contentType
        headers[.cacheControl] = "no-cache"
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: asset.body))
    }
}
