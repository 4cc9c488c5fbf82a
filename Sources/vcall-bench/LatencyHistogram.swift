import Foundation

// The signaling benchmark's latency histogram.

/// Nanosecond latencies in log-linear buckets: exact below 256 ns, then 128 buckets per power of two (< 0.8 % error).
struct LatencyHistogram: Sendable {
    private(set) var counts = [UInt64](repeating: 0, count: 256 + 56 * 128)
    private(set) var total: UInt64 = 0
    private(set) var sum: Double = 0
    private(set) var max: UInt64 = 0

    mutating func record(_ nanoseconds: UInt64) {
        counts[Self.bucket(nanoseconds)] += 1
        total += 1
        sum += Double(nanoseconds)
        if nanoseconds > max { max = nanoseconds }
    }

    mutating func merge(_ other: LatencyHistogram) {
        for index in counts.indices { counts[index] += other.counts[index] }
        total += other.total
        sum += other.sum
        max = Swift.max(max, other.max)
    }

    var mean: Double { total == 0 ? .nan : sum / Double(total) }

    /// A percentile in milliseconds; 0 when nothing was recorded (JSON has no NaN).
    func milliseconds(_ fraction: Double) -> Double { total == 0 ? 0 : percentile(fraction) / 1e6 }

    func percentile(_ fraction: Double) -> Double {
        guard total > 0 else { return .nan }
        let rank = UInt64((fraction * Double(total)).rounded(.up))
        var seen: UInt64 = 0
        for (index, count) in counts.enumerated() where count > 0 {
            seen += count
            if seen >= Swift.max(rank, 1) { return Swift.min(Self.midpoint(index), Double(max)) }
        }
        return Double(max)
    }

    static func bucket(_ value: UInt64) -> Int {
        if value < 256 { return Int(value) }
        let shift = (63 - value.leadingZeroBitCount) - 7
        let mantissa = Int(value >> UInt64(shift))  // 128…255
        return 256 + (shift - 1) * 128 + (mantissa - 128)
    }

    static func midpoint(_ index: Int) -> Double {
        if index < 256 { return Double(index) }
        let shift = (index - 256) / 128 + 1
        let mantissa = (index - 256) % 128 + 128
        return Double(UInt64(mantissa) << UInt64(shift)) + Double(UInt64(1) << UInt64(shift)) / 2
    }
}
