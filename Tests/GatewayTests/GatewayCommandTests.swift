import Gateway
import Testing

@Suite("Commands on standard input")
struct GatewayCommandTests {
    @Test("every documented command parses; names are case-insensitive, paths are kept as typed")
    func parses() throws {
        #expect(try GatewayCommand.parse("video screen") == .video("screen"))
        #expect(try GatewayCommand.parse("  VIDEO Camera ") == .video("camera"))
        #expect(try GatewayCommand.parse("video ./My Source.pipeline") == .video("./My Source.pipeline"))
        #expect(try GatewayCommand.parse("audio mic") == .audio("mic"))
        #expect(try GatewayCommand.parse("audio mute") == .mute(true))
        #expect(try GatewayCommand.parse("audio unmute") == .mute(false))
        #expect(try GatewayCommand.parse("record start") == .record(true))
        #expect(try GatewayCommand.parse("record stop") == .record(false))
        #expect(try GatewayCommand.parse("record start composite") == .composite(true))
        #expect(try GatewayCommand.parse("Record Stop Composite") == .composite(false))
        #expect(try GatewayCommand.parse("status") == .status)
        #expect(try GatewayCommand.parse("quit") == .quit)
    }

    @Test("a wrong command says what is accepted")
    func rejects() {
        for line in ["", "dance", "video", "record pause", "record start grid", "status now"] {
            #expect {
                try GatewayCommand.parse(line)
            } throws: { error in
                guard case GatewayError.usage(let text) = error else { return false }
                return text.contains("video camera|screen|test|none")
            }
        }
    }
}
