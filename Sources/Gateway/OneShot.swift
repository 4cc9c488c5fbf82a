import Synchronization

/// Why a step the gateway waited for failed, before it is turned into a user-facing `GatewayError`.
struct WaitFailure: Error {
    let message: String
}

/// A one-time outcome set from any thread (a probe, a bus watcher, a timer) and awaited once.
final class OneShot: Sendable {
    private struct State {
        var outcome: Result<Void, WaitFailure>?
        var waiter: CheckedContinuation<Void, Error>?
    }
    private let state = Mutex(State())

    func succeed() { finish(.success(())) }
    func fail(_ message: String) { finish(.failure(WaitFailure(message: message))) }

    private func finish(_ outcome: Result<Void, WaitFailure>) {
        let waiter = state.withLock { state -> CheckedContinuation<Void, Error>? in
            guard state.outcome == nil else { return nil }
            state.outcome = outcome
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume(with: outcome.mapError { $0 as Error })
    }

    func wait(timeout: Duration, what: String) async throws {
        let timer = Task { [weak self] in
            try? await Task.sleep(for: timeout)
            if !Task.isCancelled { self?.fail("timed out after \(timeout) waiting for \(what)") }
        }
        defer { timer.cancel() }
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, Error>) in
            let outcome = state.withLock { state -> Result<Void, WaitFailure>? in
                if state.outcome == nil { state.waiter = continuation }
                return state.outcome
            }
            if let outcome { continuation.resume(with: outcome.mapError { $0 as Error }) }
        }
    }
}
