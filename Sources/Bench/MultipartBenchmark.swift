import ArgumentParser
import Foundation
import MultipartKit
import NIOCore
import TestFixtures
import WireProtocol

/// `framepipe-bench multipart`: HTTP ingest's multipart reader beside
/// vapor/multipart-kit's streaming parser, on the body ffmpeg's `-f mpjpeg`
/// sends (parts with `Content-Length`, CRLF, no closing boundary), read in
/// the chunk sizes a socket gives.
///
/// Two figures per parser: CPU per part, and how late a part is handed on:
/// the bytes that had to arrive after its last byte before the parser let
/// it go. A live stream's next bytes come a frame interval later, so any
/// lateness is a whole frame of delay (a second on a 1 fps camera).
struct MultipartBenchmark: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "multipart",
        abstract: "Multipart ingest: framepipe's MultipartFrameReader beside multipart-kit's MultipartParser (CPU per part, lateness).")

    @Option(help: "Parts (frames) per round.")
    var parts = 2000

    @Option(help: "Bytes per frame.")
    var frameBytes = 60_000

    @Option(help: "Rounds; the median is reported.")
    var rounds = 7

    func run() throws {
        let frames = (0..<8).map { TestPattern.jpeg(width: 640, height: 480, targetBytes: frameBytes, frame: $0) }
        var body = ByteBuffer()
        var ends: [Int] = []  // where each part's JPEG ends in the body
        var partEnds: [Int] = []  // where each part's bytes end: a live sender writes one part, then waits a frame interval
        for i in 0..<parts {
            let jpeg = frames[i % frames.count]
            body.writeString("--ffmpeg\r\nContent-type: image/jpeg\r\nContent-length: \(jpeg.readableBytes)\r\n\r\n")
            body.writeImmutableBuffer(jpeg)
            ends.append(body.writerIndex)
            body.writeString("\r\n")
            partEnds.append(body.writerIndex)
        }
        Output.line("body: \(parts) parts of \(frameBytes / 1000) KB, \(body.readableBytes / 1_000_000) MB; median of \(rounds) rounds")
        Output.line("chunk".padding(toLength: 10, withPad: " ", startingAt: 0) + "parser".padding(toLength: 34, withPad: " ", startingAt: 0)
              + "µs/part".leftPadded(10) + "parts".leftPadded(8) + "late by (bytes, median)".leftPadded(26))
        for chunk in [4096, 16384, 65536] {
            // Reads of at most `chunk` bytes that never span two parts, as from a sender that writes a part and waits.
            var chunks: [ByteBuffer] = []
            var start = 0
            for end in partEnds {
                for offset in stride(from: start, to: end, by: chunk) { chunks.append(body.getSlice(at: offset, length: min(chunk, end - offset))!) }
                start = end
            }
            for parser in ["MultipartFrameReader (framepipe)", "MultipartParser (multipart-kit)"] {
                var times: [Double] = []
                var handed = 0
                var lateness: [Int] = []
                for _ in 0..<rounds {
                    let started = ProcessInfo.processInfo.systemUptime
                    let outcome = parser.hasPrefix("MultipartFrameReader") ? ours(chunks, ends: ends) : kit(chunks, ends: ends)
                    times.append((ProcessInfo.processInfo.systemUptime - started) / Double(max(outcome.parts, 1)) * 1e6)
                    handed = outcome.parts
                    lateness = outcome.late
                }
                let late = lateness.sorted()[lateness.count / 2]
                Output.line("\(chunk / 1024) KiB".padding(toLength: 10, withPad: " ", startingAt: 0) + parser.padding(toLength: 34, withPad: " ", startingAt: 0)
                      + String(format: "%.2f", times.sorted()[times.count / 2]).leftPadded(10) + "\(handed)".leftPadded(8) + "\(late)".leftPadded(26))
            }
        }
        Output.line("late by: bytes read past a part's end before it was handed on; on a live stream those bytes are the next frame")
    }

    /// Parts handed on, and for each how many bytes past its end had been read.
    private func ours(_ chunks: [ByteBuffer], ends: [Int]) -> (parts: Int, late: [Int]) {
        var reader = MultipartFrameReader(boundary: "ffmpeg", maxPartBytes: 8 << 20)
        var read = 0
        var late: [Int] = []
        for chunk in chunks {
            read += chunk.readableBytes
            for case .part in reader.append(chunk) { late.append(read - ends[late.count]) }
        }
        for case .part in reader.finish() { late.append(read - ends[late.count]) }
        return (late.count, late)
    }

    private func kit(_ chunks: [ByteBuffer], ends: [Int]) -> (parts: Int, late: [Int]) {
        let parser = MultipartParser(boundary: "ffmpeg")
        var read = 0
        var late: [Int] = []
        var part = ByteBuffer()
        var jpegs = 0
        parser.onBody = { bytes in part.writeBuffer(&bytes) }
        parser.onPartComplete = {
            if part.readableBytes > 0 { jpegs += 1 }
            late.append(read - ends[late.count])
            part.clear()
        }
        for chunk in chunks {
            read += chunk.readableBytes
            try? parser.execute(chunk)
        }
        // With no closing boundary the last part is never completed.
        return (jpegs, late)
    }
}
