import CDTLSCertificate
import CGStreamer
import Foundation

/// A DTLS certificate for webrtcbin: ECDSA P-256, self-signed, in PEM with its key.
///
/// GStreamer 1.22's dtls elements make an RSA certificate by default, and a DTLS client that offers only
/// ECDHE-ECDSA cipher suites (aiortc) then fails with "no shared cipher" whenever webrtcbin is the DTLS server.
/// The certificate goes in as each transport's dtlssrtpdec `pem` (what `GstWebRTCDTLSTransport.certificate` sets).
///
/// webrtcbin 1.22 derives `a=fingerprint` from that `pem` by hashing every base64 line in it, the private key's
/// too (`_generate_fingerprint_from_certificate`), so its value is wrong for a certificate with a key;
/// `fixingFingerprints(in:)` swaps exactly that value for the SHA-256 of the certificate alone.
///
/// ```swift
/// let certificate = try #require(DTLSCertificate.process)
/// try dtlssrtpdec.set("pem", certificate.pem)
/// let sdp = certificate.fixingFingerprints(in: offerSDP)
/// ```
public struct DTLSCertificate: Sendable {
    /// The certificate, then its private key, in PEM.
    public let pem: String
    /// `sha-256` fingerprint of the certificate's DER, as in `a=fingerprint` ("AB:CD:…").
    public let fingerprint: String
    /// The fingerprint webrtcbin writes for `pem`.
    public let webrtcbinFingerprint: String

    /// The certificate every peer of this process presents, made once; nil if libcrypto could not make one
    /// (GStreamer's own RSA certificate is used then).
    public static let process: DTLSCertificate? = generate(commonName: "vcall", days: 30)

    /// A new certificate from libcrypto (see `CDTLSCertificate`).
    public static func generate(commonName: String, days: UInt32) -> DTLSCertificate? {
        guard let made = vcall_dtls_ecdsa_certificate_pem(commonName, days) else { return nil }
        defer { free(made) }
        return DTLSCertificate(pem: String(cString: made))
    }

    /// Reads a PEM holding a certificate (and, after it, its key); nil if it holds no certificate.
    public init?(pem: String) {
        let lines = pem.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
        guard let end = lines.firstIndex(of: "-----END CERTIFICATE-----"),
              let certificate = Self.fingerprint(ofBase64Lines: lines[..<end]),
              let webrtcbin = Self.fingerprint(ofBase64Lines: lines[...]) else { return nil }
        self.pem = pem
        self.fingerprint = certificate
        self.webrtcbinFingerprint = webrtcbin
    }

    /// `sdp` with webrtcbin's fingerprint of this certificate replaced by the true one.
    public func fixingFingerprints(in sdp: String) -> String {
        sdp.replacingOccurrences(of: "a=fingerprint:sha-256 \(webrtcbinFingerprint)", with: "a=fingerprint:sha-256 \(fingerprint)")
    }

    /// SHA-256 of the base64 data in `lines` (lines starting with "-----" skipped), upper-case hex pairs joined by ":".
    private static func fingerprint(ofBase64Lines lines: ArraySlice<String>) -> String? {
        var der = Data()
        for line in lines where !line.isEmpty && !line.hasPrefix("-----") {
            // PEM lines hold whole 4-character groups, so each decodes alone.
            guard let bytes = Data(base64Encoded: line) else { return nil }
            der.append(bytes)
        }
        guard !der.isEmpty else { return nil }
        let hex: String? = der.withUnsafeBytes { buffer in
            guard let digest = g_compute_checksum_for_data(G_CHECKSUM_SHA256, buffer.bindMemory(to: guchar.self).baseAddress,
                                                           gsize(buffer.count)) else { return nil }
            defer { g_free(digest) }
            return String(cString: digest)
        }
        guard let hex else { return nil }
        var pairs: [String] = []
        var index = hex.startIndex
        while index < hex.endIndex {
            let next = hex.index(index, offsetBy: 2)
            pairs.append(hex[index..<next].uppercased())
            index = next
        }
        return pairs.joined(separator: ":")
    }
}
