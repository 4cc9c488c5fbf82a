import WebRTCTypes

extension RTCIceServer {
    /// The URLs in webrtcbin's form: `stun://host:port` and `turn(s)://user:password@host:port?transport=…`.
    var webrtcbinURLs: [(isTURN: Bool, url: String)] {
        urls.compactMap { url in
            let lower = url.lowercased()
            for scheme in ["stuns", "stun", "turns", "turn"] where lower.hasPrefix(scheme + ":") {
                var rest = String(url.dropFirst(scheme.count + 1))
                if rest.hasPrefix("//") { rest.removeFirst(2) }
                let isTURN = scheme.hasPrefix("turn")
                if isTURN, !rest.contains("@") {
                    let user = Self.percentEncoded(username ?? ""), password = Self.percentEncoded(credential ?? "")
                    rest = "\(user):\(password)@\(rest)"
                }
                // webrtcbin has no stuns; plain stun is the closest it can do.
                return (isTURN, "\(scheme == "stuns" ? "stun" : scheme)://\(rest)")
            }
            return nil
        }
    }

    /// RFC 3986 percent-encoding of everything but unreserved characters, for the user-info part of a URL.
    private static func percentEncoded(_ text: String) -> String {
        var result = ""
        for byte in text.utf8 {
            let scalar = Character(Unicode.Scalar(byte))
            if scalar.isLetter && byte < 128 || scalar.isNumber && byte < 128 || "-._~".contains(scalar) {
                result.append(scalar)
            } else {
                let hex = String(byte, radix: 16, uppercase: true)
                result += "%" + (hex.count < 2 ? "0" + hex : hex)
            }
        }
        return result
    }
}
