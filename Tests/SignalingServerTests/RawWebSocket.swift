#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import SignalingProtocol

/// A bare WebSocket client on a POSIX socket, for what a well-behaved client library never does: vanish
/// without a close frame (a crash, a pulled cable) or close with an arbitrary code.
///
/// Non-blocking reads polled with short sleeps, so a waiting test never holds a cooperative thread.
/// Used by one task at a time.
final class RawWebSocket: @unchecked Sendable {
    private var fd: Int32
    private var buffer: [UInt8] = []
    private(set) var id = ""
    private(set) var name = ""
    private(set) var resumeToken: String?

    private init(fd: Int32) {
        self.fd = fd
    }

    deinit {
        if fd >= 0 { Glibc.close(fd) }
    }

    /// Opens `ws://127.0.0.1:PORT/PATH` and reads the `welcome`.
    /// `receiveBuffer` fixes the socket's receive buffer (bytes), which otherwise grows to tens of MB on
    /// loopback: a test of a client that never reads fills the server's queue sooner with a small one.
    static func connect(port: Int, path: String, receiveBuffer: Int32? = nil) async throws -> RawWebSocket {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw TestTimeout(description: "socket() failed: \(errno)") }
        if var size = receiveBuffer {
            _ = setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        }
        let socket = RawWebSocket(fd: fd)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { throw TestTimeout(description: "connect() to port \(port) failed: \(errno)") }
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)

        try socket.write(Array((
            "GET \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).utf8))
        let deadline = ContinuousClock.now + .seconds(10)
        let end = Array("\r\n\r\n".utf8)
        while true {
            if let range = socket.buffer.firstRange(of: end) {
                let head = String(decoding: socket.buffer[..<range.lowerBound], as: UTF8.self)
                socket.buffer.removeSubrange(..<range.upperBound)
                guard head.hasPrefix("HTTP/1.1 101") else { throw TestTimeout(description: "upgrade refused: \(head)") }
                break
            }
            try await socket.fill(until: deadline)
        }
        guard case .welcome(let id, let name, _, let resumeToken) = try await socket.next("welcome") else { fatalError() }
        socket.id = id
        socket.name = name
        socket.resumeToken = resumeToken
        return socket
    }

    func send(_ message: ClientMessage) throws {
        try sendFrame(opcode: 0x1, payload: Array(message.jsonString().utf8))
    }

    /// The next message of `type`, skipping others.
    @discardableResult
    func next(_ type: String, timeout: Duration = .seconds(10)) async throws -> ServerMessage {
        let deadline = ContinuousClock.now + timeout
        while true {
            guard let text = try await nextText(until: deadline) else {
                throw TestTimeout(description: "raw socket closed before a \(type)")
            }
            let message = try ServerMessage.decode(text)
            if message.type == type { return message }
        }
    }

    /// Drops the connection with no close frame, as a crash or a lost network does.
    func abort() {
        guard fd >= 0 else { return }
        Glibc.close(fd)
        fd = -1
    }

    /// Sends a close frame with `code`, waits for the server's close (or the end of the socket), then closes.
    func close(code: UInt16) async throws {
        try sendFrame(opcode: 0x8, payload: [UInt8(code >> 8), UInt8(code & 0xff)])
        let deadline = ContinuousClock.now + .seconds(5)
        while (try? await nextText(until: deadline)) != nil {}
        abort()
    }

    // MARK: frames

    /// The next text message; nil when the server closed.
    private func nextText(until deadline: ContinuousClock.Instant) async throws -> String? {
        while true {
            if let (opcode, payload) = takeFrame() {
                switch opcode {
                case 0x1: return String(decoding: payload, as: UTF8.self)
                case 0x8: return nil
                case 0x9: try sendFrame(opcode: 0xA, payload: payload)
                default: continue
                }
            } else {
                do {
                    try await fill(until: deadline)
                } catch is EndOfStream {
                    return nil
                }
            }
        }
    }

    /// One complete frame from the buffer (server frames are unmasked and, here, never fragmented).
    private func takeFrame() -> (UInt8, [UInt8])? {
        guard buffer.count >= 2 else { return nil }
        let opcode = buffer[0] & 0x0f
        var length = Int(buffer[1] & 0x7f)
        var offset = 2
        if length == 126 {
            guard buffer.count >= 4 else { return nil }
            length = Int(buffer[2]) << 8 | Int(buffer[3])
            offset = 4
        } else if length == 127 {
            guard buffer.count >= 10 else { return nil }
            length = (2..<10).reduce(0) { $0 << 8 | Int(buffer[$1]) }
            offset = 10
        }
        guard buffer.count >= offset + length else { return nil }
        let payload = Array(buffer[offset..<offset + length])
        buffer.removeSubrange(..<(offset + length))
        return (opcode, payload)
    }

    private func sendFrame(opcode: UInt8, payload: [UInt8]) throws {
        var frame: [UInt8] = [0x80 | opcode]
        if payload.count < 126 {
            frame.append(0x80 | UInt8(payload.count))
        } else if payload.count <= 0xffff {
            frame += [0x80 | 126, UInt8(payload.count >> 8), UInt8(payload.count & 0xff)]
        } else {
            frame.append(0x80 | 127)
            frame += (0..<8).reversed().map { UInt8(truncatingIfNeeded: payload.count >> ($0 * 8)) }
        }
        let mask: [UInt8] = (0..<4).map { _ in UInt8.random(in: 0...255) }
        frame += mask
        frame += payload.enumerated().map { $0.element ^ mask[$0.offset % 4] }
        try write(frame)
    }

    private struct EndOfStream: Error {}

    private func write(_ bytes: [UInt8]) throws {
        var sent = 0
        while sent < bytes.count {
            let n = bytes[sent...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n > 0 {
                sent += n
            } else if n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) {
                usleep(1000)
            } else {
                throw TestTimeout(description: "send() failed: \(errno)")
            }
        }
    }

    private func fill(until deadline: ContinuousClock.Instant) async throws {
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            guard fd >= 0 else { throw EndOfStream() }
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n > 0 {
                buffer += chunk[0..<n]
                return
            }
            if n == 0 { throw EndOfStream() }
            guard errno == EAGAIN || errno == EWOULDBLOCK else { throw EndOfStream() }
            guard ContinuousClock.now < deadline else { throw TestTimeout(description: "raw socket: nothing within the time limit") }
            try await Task.sleep(for: .milliseconds(5))
        }
    }
}
