import CGStreamer

extension Element {
    /// A `queue` that drops its oldest data when full (`leaky=downstream`) instead of blocking the thread
    /// that feeds it, bounded by time or by a buffer count (0: no bound of that kind), never by bytes.
    ///
    /// Where one producer feeds several consumers (a tee to many peers or recorders), a slow consumer
    /// then loses its own oldest data and never stalls the producer or the others.
    ///
    /// ```swift
    /// let queue = try Element.leakyQueue(name: "peer1-vp8-queue", maxTime: .milliseconds(500))
    /// ```
    public static func leakyQueue(name: String? = nil, maxTime: Duration = .zero, maxBuffers: Int = 0) throws(GStreamerError) -> Element {
        let queue = try Element(factory: "queue", name: name)
        try queue.set("leaky", "downstream")
        try queue.set("max-size-buffers", maxBuffers)
        try queue.set("max-size-bytes", 0)
        let (seconds, attoseconds) = maxTime.components
        try queue.set("max-size-time", Int(seconds) * 1_000_000_000 + Int(attoseconds / 1_000_000_000))
        return queue
    }
}
