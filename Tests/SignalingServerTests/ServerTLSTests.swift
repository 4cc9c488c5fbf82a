import Foundation
import Testing

@testable import SignalingServer

@Suite("HTTPS: the certificate files")
struct ServerTLSTests {
    @Test("a missing or unreadable certificate or key is an error naming the file and the flag to fix")
    func badFiles() throws {
        let folder = try TemporaryDirectory()
        defer { folder.remove() }
        let garbage = folder.path + "/garbage.pem"
        try Data("not a certificate".utf8).write(to: URL(fileURLWithPath: garbage))
        for (certificate, key, flag) in [("/nonexistent/cert.pem", garbage, "--tls-cert"), (garbage, garbage, "--tls-cert")] {
            #expect {
                _ = try ServerTLS(certificateChainFile: certificate, privateKeyFile: key).serverConfiguration()
            } throws: { error in
                "\(error)".contains(certificate) && "\(error)".contains(flag)
            }
        }
    }

    @Test("a real certificate and key load; a key that is not PEM is refused naming --tls-key")
    func goodCertificate() throws {
        let folder = try TemporaryDirectory()
        defer { folder.remove() }
        let openssl = Process()
        openssl.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        openssl.arguments = ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                             "-keyout", folder.path + "/key.pem", "-out", folder.path + "/cert.pem", "-days", "1", "-subj", "/CN=vcall"]
        openssl.standardError = FileHandle.nullDevice
        try openssl.run()
        openssl.waitUntilExit()
        #expect(openssl.terminationStatus == 0)
        _ = try ServerTLS(certificateChainFile: folder.path + "/cert.pem", privateKeyFile: folder.path + "/key.pem").serverConfiguration()
        #expect {
            _ = try ServerTLS(certificateChainFile: folder.path + "/cert.pem", privateKeyFile: folder.path + "/cert.pem").serverConfiguration()
        } throws: { error in
            "\(error)".contains("--tls-key")
        }
    }
}
