import Foundation
import GStreamer
import Synchronization

/// Marks for measuring audio/video sync in a recording: the first video frame at or after each whole
/// second of running time is painted white (a flash) and a 1 kHz beep starts at that frame's timestamp,
/// to the sample. The two are painted into the raw media before the encoders, so whatever offset the
/// recording shows between them was added on the way: encoders, RTP, jitterbuffers, the muxer.
final class SyncMarks: Sendable {
    static let beepNanoseconds: UInt64 = 100_000_000
    static let beepFrequency = 1000.0
    private static let second: UInt64 = 1_000_000_000

    let width: Int
    let height: Int
    let framesPerSecond: Int
    let sampleRate: Int
    let channels: Int
    /// The first video frame's timestamp: frames follow at exact multiples of the frame duration from it.
    private let firstVideoPTS = Atomic<UInt64>(.max)

    init(width: Int, height: Int, framesPerSecond: Int, sampleRate: Int, channels: Int) {
        self.width = width
        self.height = height
        self.framesPerSecond = framesPerSecond
        self.sampleRate = sampleRate
        self.channels = channels
    }

    /// Paints flashes into I420 frames passing `pad` and beeps into interleaved S16 audio passing `audioPad`.
    func install(video pad: Pad, audio audioPad: Pad) {
        pad.addProbe(.buffer) { [self] info in
            guard let pts = info.buffer?.pts else { return .ok }
            _ = firstVideoPTS.compareExchange(expected: .max, desired: pts, ordering: .relaxed)
            // Only the flash frame is made writable (and copied if shared), not every frame.
            guard pts % Self.second < Self.second / UInt64(framesPerSecond) else { return .ok }
            info.withWritableBuffer { _, bytes in
                let luma = width * height
                guard bytes.count >= luma * 3 / 2 else { return }
                // White: Y at its top (235), chroma neutral (128).
                bytes[0..<luma].initializeMemory(as: UInt8.self, repeating: 235)
                bytes[luma..<(luma * 3 / 2)].initializeMemory(as: UInt8.self, repeating: 128)
            }
            return .ok
        }
        audioPad.addProbe(.buffer) { [self] info in
            guard let buffer = info.buffer, let start = buffer.pts else { return .ok }
            let samples = buffer.size / (2 * channels)
            let end = start + UInt64(samples) * Self.second / UInt64(sampleRate)
            let marks = flashes(overlapping: start..<end)
            guard !marks.isEmpty else { return .ok }
            info.withWritableBuffer { _, bytes in
                let values = bytes.bindMemory(to: Int16.self)
                for flash in marks {
                    for index in 0..<samples {
                        let time = start + UInt64(index) * Self.second / UInt64(sampleRate)
                        guard time >= flash, time < flash + Self.beepNanoseconds else { continue }
                        let phase = Double(time - flash) / Double(Self.second) * Self.beepFrequency * 2 * .pi
                        let value = Int16(20_000 * sin(phase))
                        for channel in 0..<channels { values[index * channels + channel] = value }
                    }
                }
            }
            return .ok
        }
    }

    /// Timestamps of the flash frames whose beeps overlap `range`: the first frame at or after each second.
    private func flashes(overlapping range: Range<UInt64>) -> [UInt64] {
        let first = firstVideoPTS.load(ordering: .relaxed)
        guard first != .max else { return [] }
        let low = range.lowerBound > Self.beepNanoseconds ? range.lowerBound - Self.beepNanoseconds : 0
        var result: [UInt64] = []
        var second = low / Self.second
        while second * Self.second < range.upperBound {
            let target = second * Self.second
            if target >= first {
                // Frame n lies at first + n·second/fps (rounded as the source does); take the first n at or after `target`.
                let fps = UInt64(framesPerSecond)
                var frame = ((target - first) * fps + Self.second - 1) / Self.second
                if first + frame * Self.second / fps < target { frame += 1 }
                let flash = first + frame * Self.second / fps
                if flash < range.upperBound, flash + Self.beepNanoseconds > range.lowerBound { result.append(flash) }
            }
            second += 1
        }
        return result
    }
}
