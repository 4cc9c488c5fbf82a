import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// A REST error: `{"error": {"code", "message"}}` with an HTTP status.
struct APIError: Error, HTTPResponseError {
    var status: HTTPResponse.Status
    var code: String
    var message: String

    init(_ status: HTTPResponse.Status, _ code: String, _ message: String) {
        self.status = status
        self.code = code
        self.message = message
    }

    var headers: HTTPFields { [.contentType: "application/json"] }

    func response(from request: Request, context: some RequestContext) throws -> Response {
        makeResponse()
    }

    func makeResponse() -> Response {
        let body = jsonBytes(["error": ["code": code, "message": message]])
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: body)))
    }

    static func invalidRequest(_ message: String) -> APIError { APIError(.badRequest, "invalid-request", message) }
    static let unauthorized = APIError(.unauthorized, "unauthorized", "you are not logged in: log in with POST /api/login, or send Authorization: Bearer TOKEN")
}

func jsonBytes(_ value: some Encodable) -> Data {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    encoder.dateEncodingStrategy = .iso8601
    return (try? encoder.encode(value)) ?? Data("{}".utf8)
}

/// A JSON response with a status.
func jsonResponse(_ value: some Encodable, status: HTTPResponse.Status = .ok) -> Response {
    Response(
        status: status,
        headers: [.contentType: "application/json", .cacheControl: "no-store"],
        body: .init(byteBuffer: ByteBuffer(bytes: jsonBytes(value)))
    )
}

/// Reads a small JSON body into `T`, answering 400 with a useful message otherwise.
func decodeBody<T: Decodable>(_ type: T.Type, from request: Request, example: String) async throws -> T {
    let buffer: ByteBuffer
    do {
        buffer = try await request.body.collect(upTo: 16 * 1024)
    } catch {
        throw APIError(.contentTooLarge, "too-large", "the request body is larger than 16 KiB")
    }
    do {
        return try JSONDecoder().decode(T.self, from: Data(buffer.readableBytesView))
    } catch let error as DecodingError {
        let detail: String
        switch error {
        case .keyNotFound(let key, _): detail = "field \"\(key.stringValue)\" is missing"
        case .typeMismatch(_, let c), .valueNotFound(_, let c):
            detail = "field \"\(c.codingPath.map(\.stringValue).joined(separator: "."))\" has the wrong type"
        default: detail = "the body is not valid JSON"
        }
        throw APIError.invalidRequest("\(detail): send JSON like \(example)")
    }
}

struct Credentials: Decodable {
    var username: String
    var password: String
}

struct TokenRequest: Decodable {
    var name: String
}

struct UserResponse: Encodable {
    var username: String
}

struct TokenResponse: Encodable {
    var token: String
    var name: String
}

struct RoomsResponse: Encodable {
    var rooms: [RoomSummary]
}
