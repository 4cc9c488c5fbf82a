import ArgumentParser
import Foundation
import Recordings
import Gateway
import GStreamer

/// `vcall-gateway repair FILE…`: make recordings cut off by a crash (kill -9, power loss) seekable.
struct Repair: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Make WebM recordings that were cut off (the gateway was killed) finalized and seekable.",
        discussion: """
            A recording cut off before the gateway finalized it plays up to its last written cluster (at most
            1 s before the kill) but has no duration or seek index. repair remuxes it without transcoding into
            NAME.repaired.webm, keeping the original (or replacing it with --in-place). Files that are already
            finalized are left alone.
            """
    )

    @Argument(help: "The .webm files to repair.") var files: [String]
    @Flag(name: .customLong("in-place"), help: "Replace each file with its repaired version instead of writing NAME.repaired.webm.")
    var inPlace = false

    func run() async throws {
        try GStreamer.initialize()
        var failures = 0
        for path in files {
            let file = URL(fileURLWithPath: path)
            do {
                guard FileManager.default.fileExists(atPath: file.path) else {
                    throw ValidationError("no such file")
                }
                let inspection = try WebMRepair.inspect(file)
                if inspection.isFinalized {
                    print("\(path): already finalized (\(String(format: "%.1f", inspection.duration ?? 0)) s, seekable); nothing to do")
                    continue
                }
                let repaired = try await WebMRepair.repair(file, replacingOriginal: inPlace)
                let after = try WebMRepair.inspect(repaired)
                print("\(path): repaired → \(repaired.path) (\(String(format: "%.1f", after.duration ?? 0)) s, seekable; report \(RecordingReport.url(for: repaired).lastPathComponent))")
            } catch {
                failures += 1
                FileHandle.standardError.write(Data("\(path): cannot repair: \(error)\n".utf8))
            }
        }
        if failures > 0 { throw ExitCode(1) }
    }
}
