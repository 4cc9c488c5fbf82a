import Gateway
import Testing

@Suite("Gateway errors")
struct GatewayErrorTests {
    @Test("an error's description is its message, for the user")
    func description() {
        #expect(GatewayError.source("no camera at /dev/video0: use --video test").description == "no camera at /dev/video0: use --video test")
    }
}
