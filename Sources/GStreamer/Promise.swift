import CGStreamer
import Synchronization

/// A `GstPromise` whose reply is awaited from Swift.
///
/// ```swift
/// let promise = Promise()
/// try webrtc.emit("create-offer", .structure(nil), .promise(promise))
/// let reply = try await promise.reply()          // the "offer" field holds the description
/// ```
/// `@unchecked Sendable`: GstPromise is thread-safe and the Swift state sits behind a Mutex.
public final class Promise: @unchecked Sendable {
    package let pointer: UnsafeMutablePointer<GstPromise>
    private let state: PromiseState?

    /// A new promise whose reply `reply()` awaits.
    public init() {
        let state = PromiseState()
        self.state = state
        pointer = gst_promise_new_with_change_func(promiseChanged, Unmanaged.passRetained(state).toOpaque(), releasePromiseState)
    }

    /// Wraps a promise someone else made (for example one passed to a signal handler).
    package init(retaining pointer: UnsafeMutablePointer<GstPromise>) {
        self.pointer = gst_promise_ref(pointer)
        state = nil
    }

    deinit { gst_promise_unref(pointer) }

    /// Waits for the reply. Throws if the promise is interrupted or expires, or if the reply carries
    /// an `error` field (as webrtcbin's do on failure), with that error's message.
    ///
    /// With a `timeout`, an unanswered promise is interrupted when it passes: an element whose worker
    /// is stuck (webrtcbin queues every request on one thread) must not hang its caller for good.
    public func reply(timeout: Duration? = nil) async throws(GStreamerError) -> Structure? {
        guard let state else { throw .promise("this promise was not made by Swift; its reply cannot be awaited") }
        let timer = timeout.map { timeout in
            Task { [self] in
                try await Task.sleep(for: timeout)
                state.noteTimeout(timeout)
                interrupt()
            }
        }
        defer { timer?.cancel() }
        let result: Result<Structure?, GStreamerError> = await withCheckedContinuation { continuation in
            state.await(continuation)
        }
        return try result.get()
    }

    /// Answers a promise handed to Swift by GStreamer.
    public func reply(with structure: Structure?) {
        gst_promise_reply(pointer, structure.map { gst_structure_copy($0.pointer) })
    }

    /// Interrupts the promise: a pending `reply()` throws.
    public func interrupt() { gst_promise_interrupt(pointer) }
}

private final class PromiseState: Sendable {
    private struct Inner {
        var result: Result<Structure?, GStreamerError>?
        var waiter: CheckedContinuation<Result<Structure?, GStreamerError>, Never>?
        var timedOut: Duration?
    }
    private let inner = Mutex(Inner())

    /// Set before a timed-out promise is interrupted, so that its error says why.
    func noteTimeout(_ timeout: Duration) { inner.withLock { $0.timedOut = timeout } }
    var timedOut: Duration? { inner.withLock { $0.timedOut } }

    func await(_ continuation: CheckedContinuation<Result<Structure?, GStreamerError>, Never>) {
        let ready = inner.withLock { inner -> Result<Structure?, GStreamerError>? in
            if let result = inner.result { return result }
            inner.waiter = continuation
            return nil
        }
        if let ready { continuation.resume(returning: ready) }
    }

    func complete(_ result: Result<Structure?, GStreamerError>) {
        let waiter = inner.withLock { inner -> CheckedContinuation<Result<Structure?, GStreamerError>, Never>? in
            guard inner.result == nil else { return nil }
            inner.result = result
            defer { inner.waiter = nil }
            return inner.waiter
        }
        waiter?.resume(returning: result)
    }
}

/// Called by GStreamer (any thread) when the promise is replied, interrupted or expires. Never blocks.
private let promiseChanged: GstPromiseChangeFunc = { promise, data in
    guard let promise, let data else { return }
    let state = Unmanaged<PromiseState>.fromOpaque(data).takeUnretainedValue()
    let outcome = gst_promise_wait(promise) // not pending any more, so this returns at once
    switch outcome {
    case GST_PROMISE_RESULT_REPLIED:
        let reply = gst_promise_get_reply(promise).map { Structure(copying: $0) }
        if let message = reply?.errorMessage() {
            state.complete(.failure(.promise(message)))
        } else {
            state.complete(.success(reply))
        }
    case GST_PROMISE_RESULT_INTERRUPTED:
        let reason = state.timedOut.map { "no reply within \($0)" } ?? "the promise was interrupted"
        state.complete(.failure(.promise(reason)))
    case GST_PROMISE_RESULT_EXPIRED: state.complete(.failure(.promise("the promise expired")))
    default: break
    }
}

private let releasePromiseState: GDestroyNotify = { data in
    guard let data else { return }
    Unmanaged<PromiseState>.fromOpaque(data).release()
}
