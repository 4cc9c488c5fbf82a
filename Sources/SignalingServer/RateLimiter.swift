import NIOCore

/// A token bucket: `burst` messages at once, refilled at `perSecond`.
struct RateLimiter {
    let perSecond: Double
    let burst: Double
    private var tokens: Double
    private var last: NIODeadline
    private var lastWarning: NIODeadline?

    init(perSecond: Double, burst: Double, now: NIODeadline = .now()) {
        self.perSecond = perSecond
        self.burst = max(1, burst)
        self.tokens = max(1, burst)
        self.last = now
    }

    /// Takes one token; false when the bucket is empty.
    mutating func allow(now: NIODeadline = .now()) -> Bool {
        let elapsed = max(0, Double((now - last).nanoseconds) / 1e9)
        if now > last { last = now }
        tokens = min(burst, tokens + elapsed * perSecond)
        guard tokens >= 1 else { return false }
        tokens -= 1
        return true
    }

    /// Whether to tell the client it is being limited: at most once a second, so a flood gets no flood back.
    mutating func shouldWarn(now: NIODeadline = .now()) -> Bool {
        if let lastWarning, now - lastWarning < .seconds(1) { return false }
        lastWarning = now
        return true
    }
}
