import AsyncHTTPClient
import Foundation
import JWTKit
import Logging
import NIOCore
import NIOPosix
import Pipeline

/// The signing keys of an identity provider, from a JWKS file or URL, kept
/// in memory and refreshed: periodically (`JWKSRefresher`), and when a token
/// names a key id the set does not have (a provider that rotated its key) —
/// at most once per `unknownKeyInterval`, shared by every request waiting
/// for it, so a flood of tokens with made-up key ids cannot make the relay
/// hammer the provider. Never once per request.
///
/// A fetch that fails keeps the keys already loaded.
package actor JWKSKeys {
    enum Source: Sendable, CustomStringConvertible {
        case file(String)
        case url(String)

        var description: String {
            switch self {
            case .file(let path): path
            case .url(let url): url
            }
        }
    }

    /// RS256 needs an RSA key and ES256 a P-256 one; nothing else is used from a JWKS.
    package struct Key {
        let keys: JWTKeyCollection
        package let type: JWK.KeyType
    }

    struct FetchFailed: Error, CustomStringConvertible {
        let description: String
    }

    let source: Source
    let unknownKeyInterval: Duration
    /// The relay's clock, on which the cooldown between fetches is counted.
    private let clock: any RelayClock
    private let logger: Logger
    private var byID: [String: Key] = [:]
    private var lastFetch: ContinuousClock.Instant?
    private var inFlight: Task<Void, any Error>?
    /// How many keys the last good fetch held, for logs and health.
    private(set) var count = 0

    init(source: Source, unknownKeyInterval: Duration = .seconds(30), clock: any RelayClock = SystemRelayClock(), logger: Logger) {
        self.source = source
        self.unknownKeyInterval = unknownKeyInterval
        self.clock = clock
        self.logger = logger
    }

    /// The key for `kid`, fetching the set again first if it does not have
    /// it and the last fetch is old enough.
    func key(_ kid: String) async -> Key? {
        if let key = byID[kid] { return key }
        if let last = lastFetch, clock.instant - last < unknownKeyInterval, inFlight == nil { return nil }
        logger.info("token names an unknown key id; fetching the key set again", metadata: ["kid": "\(kid.prefix(64))", "jwks": "\(source)"])
        try? await refresh()
        return byID[kid]
    }

    /// Fetches and installs the key set; concurrent callers share one fetch.
    package func refresh() async throws {
        if let inFlight { return try await inFlight.value }
        let task = Task { try await self.fetchAndInstall() }
        inFlight = task
        defer { inFlight = nil }
        try await task.value
    }

    private func fetchAndInstall() async throws {
        lastFetch = clock.instant
        let installed: [String: Key]
        do {
            // A provider's maintenance page answers 200 too: it is a failed fetch, and said so.
            installed = try await Self.parse(try await Self.fetch(source), source: source)
        } catch {
            logger.warning("cannot fetch the JWKS; keeping the keys already loaded", metadata: [
                "jwks": "\(source)", "error": "\(error)", "keys": "\(count)"])
            throw error
        }
        byID = installed
        count = installed.count
        logger.info("JWKS loaded", metadata: ["jwks": "\(source)", "keys": "\(installed.count)",
                                               "kids": "\(installed.keys.sorted().joined(separator: ","))"])
    }

    /// One collection per key id, so a token is only ever checked against the key it names.
    static func parse(_ text: String, source: Source) async throws -> [String: Key] {
        let jwks: JWKS
        do {
            jwks = try JSONDecoder().decode(JWKS.self, from: Data(text.utf8))
        } catch {
            throw FetchFailed(description: "\(source) is not a JWKS (a JSON object with a \"keys\" array): \(error)")
        }
        var keys: [String: Key] = [:]
        for jwk in jwks.keys {
            guard let kid = jwk.keyIdentifier?.string, jwk.keyType == .rsa || jwk.keyType == .ecdsa else { continue }
            let collection = JWTKeyCollection()
            do {
                try await collection.add(jwk: jwk)
            } catch {
                throw FetchFailed(description: "\(source): key \(kid) cannot be used: \(error)")
            }
            keys[kid] = Key(keys: collection, type: jwk.keyType)
        }
        guard !keys.isEmpty else { throw FetchFailed(description: "\(source) holds no RSA or EC key with a kid") }
        return keys
    }

    /// A provider that refuses the connection fails the fetch at once (the
    /// shared client would retry quietly until its timeout, and a relay with
    /// a mistyped JWKS URL would take 10 s to say so). Process-wide, like
    /// `HTTPClient.shared`, so never shut down.
    private static let client = HTTPClient.failingFast()

    static func fetch(_ source: Source) async throws -> String {
        switch source {
        case .file(let path):
            guard let data = FileManager.default.contents(atPath: path) else { throw FetchFailed(description: "cannot read \(path)") }
            return String(decoding: data, as: UTF8.self)
        case .url(let url):
            var request = HTTPClientRequest(url: url)
            request.headers.add(name: "Accept", value: "application/json")
            let response = try await client.execute(request, timeout: .seconds(10))
            guard response.status == .ok else { throw FetchFailed(description: "\(url) answered \(response.status.code)") }
            let body = try await response.body.collect(upTo: 1 << 20)
            return String(buffer: body)
        }
    }
}
