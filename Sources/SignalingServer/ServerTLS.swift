import Foundation
import NIOSSL

/// The certificate and key vcall-server serves HTTPS and WSS with (`--tls-cert`, `--tls-key`): browsers
/// give the camera and microphone only to secure pages, so anyone not on the server's own machine needs it.
///
/// ```swift
/// configuration.tls = ServerTLS(certificateChainFile: "/etc/vcall/fullchain.pem", privateKeyFile: "/etc/vcall/key.pem")
/// ```
public struct ServerTLS: Sendable, Equatable {
    /// PEM: the server's certificate first, then any intermediate certificates.
    public var certificateChainFile: String
    /// PEM: the certificate's private key.
    public var privateKeyFile: String

    public init(certificateChainFile: String, privateKeyFile: String) {
        self.certificateChainFile = certificateChainFile
        self.privateKeyFile = privateKeyFile
    }

    /// Why the files could not be used, said so that the user knows which file and what to do.
    public struct LoadError: Error, CustomStringConvertible {
        public let description: String
    }

    /// The files read and checked, as NIO's server TLS configuration.
    public func serverConfiguration() throws(LoadError) -> TLSConfiguration {
        let chain: [NIOSSLCertificate]
        do {
            chain = try NIOSSLCertificate.fromPEMFile(certificateChainFile)
        } catch {
            throw LoadError(description: "cannot read the TLS certificate \(certificateChainFile) (\(error)): give a PEM file with --tls-cert (the certificate, then its intermediates)")
        }
        guard !chain.isEmpty else {
            throw LoadError(description: "\(certificateChainFile) holds no PEM certificate: give the certificate with --tls-cert")
        }
        let key: NIOSSLPrivateKey
        do {
            key = try NIOSSLPrivateKey(file: privateKeyFile, format: .pem)
        } catch {
            throw LoadError(description: "cannot read the TLS private key \(privateKeyFile) (\(error)): give the certificate's key as an unencrypted PEM file with --tls-key")
        }
        return TLSConfiguration.makeServerConfiguration(certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key))
    }
}
