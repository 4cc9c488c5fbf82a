/// A command typed on the gateway's standard input while it runs.
public enum GatewayCommand: Equatable, Sendable {
    /// `video camera|screen|test|none|PATH`: swap the video source without renegotiating.
    case video(String)
    /// `audio mic|test|none|PATH`: swap the audio source.
    case audio(String)
    /// `audio mute` / `audio unmute`.
    case mute(Bool)
    /// `record start` / `record stop`: every participant's own file.
    case record(Bool)
    /// `record start composite` / `record stop composite`: the meeting as one file.
    case composite(Bool)
    case status
    case quit
    case help

    public static let usage = """
        commands: video camera|screen|test|none|FILE.pipeline · audio mic|test|none|mute|unmute · \
        record start|stop [composite] · status · help · quit
        """

    /// Built-in names are case-insensitive; a path is kept as typed.
    private static func sourceName(_ text: String) -> String {
        text.contains("/") || text.hasSuffix(".pipeline") ? text : text.lowercased()
    }

    /// Parses one line; throws `GatewayError.usage` saying what is accepted.
    public static func parse(_ line: String) throws(GatewayError) -> GatewayCommand {
        let words = line.split(whereSeparator: \.isWhitespace).map(String.init)
        guard let verb = words.first?.lowercased() else { throw .usage("empty command: \(usage)") }
        let argument = words.count > 1 ? words[1...].joined(separator: " ") : nil
        switch (verb, argument?.lowercased()) {
        case ("video", _?): return .video(sourceName(argument!))
        case ("audio", "mute"): return .mute(true)
        case ("audio", "unmute"): return .mute(false)
        case ("audio", _?): return .audio(sourceName(argument!))
        case ("record", "start"): return .record(true)
        case ("record", "stop"): return .record(false)
        case ("record", "start composite"): return .composite(true)
        case ("record", "stop composite"): return .composite(false)
        case ("status", nil): return .status
        case ("quit", nil), ("exit", nil): return .quit
        case ("help", _), ("?", _): return .help
        case ("video", nil), ("audio", nil), ("record", _):
            throw .usage("\(verb) needs an argument: \(usage)")
        default:
            throw .usage("unknown command \"\(line.trimmingCharacters(in: .whitespaces))\": \(usage)")
        }
    }
}
