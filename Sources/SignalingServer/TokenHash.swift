import Crypto
import Foundation

/// How session and API tokens are stored: the lowercase hex SHA-256 of the token's UTF-8 bytes.
///
/// The format is what existing databases hold, so it must never change.
///
/// ```swift
/// TokenHash.hex("abc") // "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
/// ```
enum TokenHash {
    static func hex(_ token: String) -> String {
        SHA256.hash(data: Data(token.utf8)).hexString
    }
}

extension Sequence<UInt8> {
    /// The bytes as lowercase hex, two characters each.
    var hexString: String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        for byte in self {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0f)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}

/// Random URL-safe secrets and ids.
enum RandomToken {
    /// `byteCount` random bytes as lowercase hex.
    static func hex(byteCount: Int) -> String {
        bytes(byteCount).hexString
    }

    /// `count` bytes from the system's secure generator.
    static func bytes(_ count: Int) -> [UInt8] {
        var generator = SystemRandomNumberGenerator()
        return (0..<count).map { _ in UInt8.random(in: 0...255, using: &generator) }
    }
}
