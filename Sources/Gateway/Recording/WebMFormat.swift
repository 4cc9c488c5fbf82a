import Foundation
import GStreamer

/// How vcall writes WebM, shared by the recorder, the repair and the crash tests.
///
/// Crash safety comes from writing every muxed block to the kernel at once and from short clusters:
/// - filesink `buffer-mode=unbuffered`: each buffer is a `write(2)`; after `kill -9` the kernel still holds
///   everything written, so only what sat inside the muxer (a frame or two) is lost.
/// - webmmux writes each SimpleBlock as it muxes it; a cluster's size is filled in when the cluster closes,
///   and the last, unclosed cluster demuxes as an unknown-size cluster. Clusters of 0.5–1 s keep that last
///   one short and give players a cluster boundary to resync at.
/// - The duration and the Cues index are only written at EOS: a killed file plays but cannot seek until
///   `WebMRepair.repair` remuxes it.
public enum WebMFormat {
    /// webmmux `max-cluster-duration`: a new cluster starts after at most 1 s, keyframe or not.
    public static let maxClusterDuration = 1_000_000_000
    /// webmmux `min-cluster-duration`: a keyframe starts a new cluster once the current one holds 0.5 s.
    public static let minClusterDuration = 500_000_000
    public static let writingApp = "vcall-gateway"

    /// webmmux's properties, as set on the element.
    public static let muxerProperties: [(name: String, value: Value)] = [
        ("max-cluster-duration", .int(maxClusterDuration)),
        ("min-cluster-duration", .int(minClusterDuration)),
        // A recording that starts mid-call begins at 0, not at the call's running time.
        ("offset-to-zero", .bool(true)),
        ("writing-app", .string(writingApp)),
    ]

    /// filesink's properties (besides `location`).
    public static let sinkProperties: [(name: String, value: Value)] = [
        ("buffer-mode", .string("unbuffered")),
        // Inside a running call's pipeline an async sink would hold the bin in PAUSED (see DESIGN.md).
        ("async", .bool(false)),
    ]

    /// `webmmux …` as a launch description (for gst-launch-1.0 stand-ins in tests).
    public static func muxerLaunch(name: String) -> String {
        "webmmux name=\(name) " + muxerProperties.map { "\($0.name)=\($0.value)" }.joined(separator: " ")
    }

    /// `filesink …` as a launch description (quoting the location only if it holds a space).
    public static func sinkLaunch(location: String) -> String {
        let quoted = location.contains(" ") ? "\"\(location)\"" : location
        return "filesink location=\(quoted) " + sinkProperties.map { "\($0.name)=\($0.value)" }.joined(separator: " ")
    }
}

extension WebMFormat {
    /// Ends a file: sends EOS into each of `inputs` and waits (up to `timeout`) for it to reach `sink`,
    /// the filesink, by then webmmux has written the duration and the seek index. False on timeout:
    /// the file plays but cannot seek until `vcall-gateway repair`.
    static func finalize(endingAt sink: Element, sendingEndOfStreamTo inputs: [Pad], timeout: Duration) async -> Bool {
        guard let sinkPad = sink.staticPad("sink") else { return false }
        let endOfStream = OneShot()
        let token = sinkPad.addProbe(.eventDownstream) { info in
            if info.event?.isEndOfStream == true { endOfStream.succeed() }
            return .ok
        }
        for input in inputs { _ = input.sendEvent(.endOfStream) }
        let finalized = (try? await endOfStream.wait(timeout: timeout, what: "the end of the file")) != nil
        if let token { sinkPad.removeProbe(token) }
        return finalized
    }
}
