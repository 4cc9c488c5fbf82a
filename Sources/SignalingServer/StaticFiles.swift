import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import NIOPosix

/// Serves the web app: `/` is `index.html`, `/r/<roomId>` is `room.html`, anything else a file by its path.
///
/// Files come from the package's `Public` folder (`Bundle.module`) or from `--web-root DIR`.
struct StaticFileMiddleware<Context: RequestContext>: RouterMiddleware {
    let root: URL?

    init(webRoot: String?) {
        if let webRoot {
            root = URL(fileURLWithPath: webRoot, isDirectory: true).standardizedFileURL
        } else {
            root = Self.bundledRoot()
        }
    }

    static func bundledRoot() -> URL? {
        Bundle.module.resourceURL?.appendingPathComponent("Public", isDirectory: true).standardizedFileURL
    }

    static func contentType(forExtension ext: String) -> String {
        switch ext.lowercased() {
        case "html", "htm": "text/html; charset=utf-8"
        case "js", "mjs": "text/javascript; charset=utf-8"
        case "css": "text/css; charset=utf-8"
        case "json", "map": "application/json"
        case "webmanifest": "application/manifest+json"
        case "svg": "image/svg+xml"
        case "png": "image/png"
        case "jpg", "jpeg": "image/jpeg"
        case "gif": "image/gif"
        case "webp": "image/webp"
        case "ico": "image/x-icon"
        case "woff2": "font/woff2"
        case "woff": "font/woff"
        case "txt": "text/plain; charset=utf-8"
        case "wasm": "application/wasm"
        case "mp3": "audio/mpeg"
        case "ogg", "oga": "audio/ogg"
        case "webm": "video/webm"
        default: "application/octet-stream"
        }
    }

    /// The file a request path maps to, relative to the root, or nil for paths the app does not serve.
    static func relativePath(for path: String) -> String? {
        if path == "/" || path.isEmpty { return "index.html" }
        let segments = path.split(separator: "/", omittingEmptySubsequences: true)
        if segments.count == 2, segments[0] == "r" { return "room.html" }
        if segments.first == "api" || segments.first == "ws" { return nil }
        guard !segments.isEmpty,
            segments.allSatisfy({ !$0.hasPrefix(".") && !$0.contains("\\") && !$0.contains("\0") })
        else { return nil }
        return segments.joined(separator: "/")
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let root, request.method == .get || request.method == .head,
            let relative = Self.relativePath(for: request.uri.path.removingPercentEncoding ?? request.uri.path)
        else {
            return try await next(request, context)
        }
        let url = root.appendingPathComponent(relative).standardizedFileURL
        guard url.path.hasPrefix(root.path + "/") else { return try await next(request, context) }
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory), !isDirectory.boolValue else {
            return try await next(request, context)
        }
        let data = try await NIOThreadPool.singleton.runIfActive { try Data(contentsOf: url) }
        var headers = HTTPFields()
        headers[.contentType] = Self.contentType(forExtension: url.pathExtension)
        headers[.cacheControl] = "no-cache"
        headers[.contentLength] = String(data.count)
        if request.method == .head {
            return Response(status: .ok, headers: headers, body: .init())
        }
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }
}
