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

    /// Prints a line above the status block (or plainly).
    func line(_ text: String, to stream: UnsafeMutablePointer<FILE> = stdout) {
        state.withLock { state in
            if isTerminal {
                write(clearing: state.blockLines)
                fputs(text + "\n", stdout)
                draw(state.block)
            } else {
                fputs(text + "\n", stream)
            }
            fflush(stdout)
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
            fflush(stdout)
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
        if lines > 0 { fputs("\u{1B}[\(lines)F\u{1B}[J", stdout) }
    }

    private func draw(_ lines: [String]) {
        guard !lines.isEmpty else { return }
        fputs(String(repeating: "─", count: 60) + "\n", stdout)
        for line in lines { fputs(line + "\n", stdout) }
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

    func log(level: Logger.Level, message: Logger.Message, metadata explicit: Logger.Metadata?,
             source: String, file: String, function: String, line: UInt) {
        let merged = metadata.merging(explicit ?? [:]) { $1 }
        let details = merged.isEmpty ? "" : " " + merged.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        let time = ISO8601DateFormatter.string(from: Date(), timeZone: .current, formatOptions: [.withTime, .withColonSeparatorInTime])
        Console.shared.line("\(time) \(level)\(details) \(message)", to: stderr)
    }
}
