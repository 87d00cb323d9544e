import Access
import ArgumentParser
import Foundation

/// Reads key material for `serve` and `token`, saying which file is wrong and why.
enum KeyFile {
    static func text(at path: String) throws -> String {
        guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
            throw ValidationError("cannot read key file \(path)")
        }
        return text
    }

    /// An HS256 secret: the file's bytes, without a trailing newline an editor may have added.
    static func secret(at path: String) throws -> [UInt8] {
        guard var bytes = FileManager.default.contents(atPath: path).map(Array.init) else {
            throw ValidationError("cannot read secret file \(path)")
        }
        while let last = bytes.last, last == 0x0A || last == 0x0D { bytes.removeLast() }
        guard bytes.count >= AuthSettings.minimumSecretBytes else {
            throw ValidationError("secret file \(path) holds \(bytes.count) bytes; an HS256 secret needs at least \(AuthSettings.minimumSecretBytes) (try: head -c 48 /dev/urandom | base64 > \(path))")
        }
        return bytes
    }
}
