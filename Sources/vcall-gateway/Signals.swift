import Dispatch
import Foundation
import Synchronization

/// Quitting: on `quit`, SIGINT or SIGTERM; a second SIGINT or SIGTERM exits at once.
final class QuitSignal: Sendable {
    private struct State { var triggered = false; var waiters: [CheckedContinuation<Void, Never>] = [] }
    private let state = Mutex(State())
    /// Kept so the sources live; written once, by `installSignalHandlers` before any signal can arrive.
    nonisolated(unsafe) private var sources: [any DispatchSourceSignal] = []

    func installSignalHandlers() {
        for signalNumber in [SIGINT, SIGTERM] {
            // The default action would kill the process before recordings are finalized.
            signal(signalNumber, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: signalNumber, queue: .global())
            source.setEventHandler { [weak self] in
                guard let self else { return }
                if self.isTriggered {
                    FileHandle.standardError.write(Data("second signal: exiting without finalizing (run vcall-gateway repair on the files)\n".utf8))
                    Foundation.exit(130)
                }
                self.trigger()
            }
            source.resume()
            sources.append(source)
        }
    }

    var isTriggered: Bool { state.withLock { $0.triggered } }

    func trigger() {
        let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.triggered = true
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.resume() }
    }

    func wait() async {
        await withCheckedContinuation { continuation in
            let now = state.withLock { state -> Bool in
                if state.triggered { return true }
                state.waiters.append(continuation)
                return false
            }
            if now { continuation.resume() }
        }
    }
}

/// Standard input's lines, read on a thread of their own (reading blocks), as an async stream.
enum StandardInput {
    static func lines() -> AsyncStream<String> {
        AsyncStream { continuation in
            let thread = Thread {
                while let line = readLine(strippingNewline: true) { continuation.yield(line) }
                continuation.finish()
            }
            thread.start()
        }
    }
}

/// The promise that quitting ends the process: a plain thread (independent of Swift's task threads,
/// which blocking library calls could hold) exits after `limit` if the graceful path has not.
enum ExitDeadline {
    static func start(_ limit: Duration) {
        let seconds = Double(limit.components.seconds) + Double(limit.components.attoseconds) / 1e18
        let thread = Thread {
            Thread.sleep(forTimeInterval: seconds)
            FileHandle.standardError.write(Data("vcall-gateway: leaving took longer than \(Int(seconds)) s; exiting now (run vcall-gateway repair on unfinished files)\n".utf8))
            _exit(1)
        }
        thread.start()
    }
}
