import Synchronization

/// Lets keyframe requests for one track through at most once per `interval`. A request inside the
/// interval is deferred to its end, where it goes out once however many arrived meanwhile: never
/// dropped, so the last request of a burst is always answered.
///
/// Why: every consumer's depayloader asks on each delta frame while it waits for a keyframe (and on
/// every loss), a recorder asks when it starts, a newcomer when it attaches; each request becomes a
/// PLI to the sender, which answers each one with a keyframe several times the size of a delta frame.
///
/// ```swift
/// let throttle = KeyframeRequestThrottle(interval: .seconds(1)) { pad.sendEvent(.upstreamForceKeyUnit(allHeaders: false)) }
/// throttle.request()   // sent now
/// throttle.request()   // sent one second after the first
/// throttle.request()   // folded into the one above
/// ```
final class KeyframeRequestThrottle: Sendable {
    let interval: Duration
    private let send: @Sendable () -> Void
    private struct State {
        var lastSent: ContinuousClock.Instant?
        var deferred = false
        var stopped = false
        var sent = 0
    }
    private let state = Mutex(State())

    init(interval: Duration, send: @escaping @Sendable () -> Void) {
        self.interval = interval
        self.send = send
    }

    /// Asks for a keyframe now, or at the end of the current interval. Never blocks: safe on a streaming thread.
    func request() {
        let now = ContinuousClock.now
        enum Action { case sendNow, sendAt(ContinuousClock.Instant), nothing }
        let action = state.withLock { state -> Action in
            guard !state.stopped, !state.deferred else { return .nothing }
            if let last = state.lastSent, now - last < interval {
                state.deferred = true
                return .sendAt(last + interval)
            }
            state.lastSent = now
            state.sent += 1
            return .sendNow
        }
        switch action {
        case .sendNow:
            send()
        case .sendAt(let deadline):
            Task { [weak self] in
                try? await Task.sleep(until: deadline, clock: .continuous)
                self?.sendDeferred()
            }
        case .nothing:
            break
        }
    }

    private func sendDeferred() {
        let go = state.withLock { state -> Bool in
            guard state.deferred, !state.stopped else { return false }
            state.deferred = false
            state.lastSent = .now
            state.sent += 1
            return true
        }
        if go { send() }
    }

    /// No request goes out from now on (the track is closed).
    func stop() { state.withLock { $0.stopped = true } }

    /// Requests sent so far.
    var sentCount: Int { state.withLock { $0.sent } }
}
