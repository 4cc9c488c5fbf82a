import Foundation
import GStreamer
import GStreamerWebRTC
import Testing
import WebRTCTypes

@Suite("GStreamer's webrtc and sdp libraries from Swift")
struct GStreamerWebRTCTests {
    /// Runs `openssl` with `arguments`, `input` on its standard input; returns what it printed.
    private func openssl(_ arguments: [String], input: String) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        process.arguments = arguments
        let stdin = Pipe(), stdout = Pipe()
        process.standardInput = stdin
        process.standardOutput = stdout
        try process.run()
        stdin.fileHandleForWriting.write(Data(input.utf8))
        try stdin.fileHandleForWriting.close()
        let text = String(decoding: stdout.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return text
    }

    @Test("the C generator makes a self-signed ECDSA P-256 certificate with its key, valid for the days asked, each with its own key")
    func certificateGenerator() throws {
        let certificate = try #require(DTLSCertificate.generate(commonName: "vcall-test", days: 2))
        let text = try openssl(["x509", "-noout", "-text", "-subject", "-issuer", "-fingerprint", "-sha256", "-checkend", "86400"],
                               input: certificate.pem)
        #expect(text.contains("id-ecPublicKey") && text.contains("prime256v1"))
        #expect(text.contains("ecdsa-with-SHA256"))
        #expect(text.contains("subject=CN = vcall-test") && text.contains("issuer=CN = vcall-test"))
        #expect(text.contains("Certificate will not expire"), "valid for at least one more day")
        #expect(try openssl(["x509", "-noout", "-checkend", "259200"], input: certificate.pem).contains("Certificate will expire"),
                "and not for three")
        #expect(text.contains("sha256 Fingerprint=\(certificate.fingerprint)"))
        #expect(certificate.pem.contains("-----BEGIN PRIVATE KEY-----"))
        #expect(certificate.webrtcbinFingerprint != certificate.fingerprint, "webrtcbin's hash covers the key too")
        let other = try #require(DTLSCertificate.generate(commonName: "vcall-test", days: 2))
        #expect(other.fingerprint != certificate.fingerprint)
    }

    @Test("fixingFingerprints replaces exactly webrtcbin's fingerprint of the certificate")
    func fingerprintFix() throws {
        let certificate = try #require(DTLSCertificate.process)
        let sdp = "a=fingerprint:sha-256 \(certificate.webrtcbinFingerprint)\r\na=fingerprint:sha-256 AA:BB\r\n"
        #expect(certificate.fixingFingerprints(in: sdp) == "a=fingerprint:sha-256 \(certificate.fingerprint)\r\na=fingerprint:sha-256 AA:BB\r\n")
        #expect(DTLSCertificate(pem: "not a certificate") == nil)
    }

    @Test("a session description goes into GStreamer's SDP library and comes back as the same text and type")
    func sessionDescriptionRoundTrip() throws {
        try GStreamer.initialize()
        let sdp = [
            "v=0", "o=- 4611731400430051336 2 IN IP4 127.0.0.1", "s=-", "t=0 0", "a=group:BUNDLE 0",
            "m=video 9 UDP/TLS/RTP/SAVPF 96", "c=IN IP4 0.0.0.0", "a=mid:0", "a=ice-ufrag:abcd", "a=sendrecv",
            "a=rtpmap:96 VP8/90000", "",
        ].joined(separator: "\r\n")
        for type in RTCSdpType.allCases where type != .rollback {
            let value = try RTCSessionDescriptionInit(type: type, sdp: sdp).webrtcbinValue()
            let back = try #require(RTCSessionDescriptionInit(webrtcbinValue: value))
            #expect(back.type == type)
            #expect(back.sdp == sdp)
        }
        // GStreamer's SDP parser takes nearly any text (it skips lines it does not know); what webrtcbin
        // then finds missing is WebRTCPeer's to report. A value that holds no description reads as nil.
        #expect(RTCSessionDescriptionInit(webrtcbinValue: .string("v=0")) == nil)
        #expect(RTCSessionDescriptionInit(webrtcbinValue: nil) == nil)
    }
}
