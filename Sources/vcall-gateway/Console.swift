import Foundation
import Logging
import Synchronization

/// Terminal output: on a terminal, a live status block stays at the bottom and log lines scroll above
/// it; otherwise plain lines. Log lines and the block share one lock so they never interleave.
final class Console: Sendable {
    static let shared = Console()

    let isTerminal = isatty(STDOUT_FILENO) == 1
    private struct State { var blockLines = 0; var block: [String] = [] }
    private let state = Mutex(State())

    enum Stream { case output, error }

    /// Prints a line above the status block (or plainly, to `stream`).
    func line(_ text: String, to stream: Stream = .output) {
        state.withLock { state in
            if isTerminal {
                write(clearing: state.blockLines)
                emit(text + "\n")
                draw(state.block)
            } else {
                emit(text + "\n", to: stream)
            }
        }
    }

    /// Replaces the status block (terminal only).
    func status(_ lines: [String]) {
        guard isTerminal else { return }
        state.withLock { state in
            write(clearing: state.blockLines)
            state.block = lines
            state.blockLines = lines.count + 1
            draw(lines)
        }
    }

    /// Leaves the block on screen as the last thing printed.
    func finish() {
        state.withLock { state in
            state.block = []
            state.blockLines = 0
        }
    }

    private func write(clearing lines: Int) {
        // Cursor up to the block's first line, then clear to the end of the screen.
        if lines > 0 { emit("\u{1B}[\(lines)F\u{1B}[J") }
    }

    private func draw(_ lines: [String]) {
        guard !lines.isEmpty else { return }
        emit(String(repeating: "─", count: 60) + "\n" + lines.map { $0 + "\n" }.joined())
    }
}

extension Console {
    /// Unbuffered, so lines and the block reach the terminal in the order written.
    private func emit(_ text: String, to stream: Stream = .output) {
        (stream == .output ? FileHandle.standardOutput : FileHandle.standardError).write(Data(text.utf8))
    }
}

/// swift-log through the console: above the status block on a terminal, standard error otherwise.
struct ConsoleLogHandler: LogHandler {
    let label: String
    var logLevel: Logger.Level
    var metadata: Logger.Metadata = [:]

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        let (level, message) = (event.level, event.message)
        let merged = metadata.merging(event.metadata ?? [:]) { $1 }
        let details = merged.isEmpty ? "" : " " + merged.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        let time = ISO8601DateFormatter.string(from: Date(), timeZone: .current, formatOptions: [.withTime, .withColonSeparatorInTime, .withFractionalSeconds])
        Console.shared.line("\(time) \(level)\(details) \(message)", to: .error)
    }
}
