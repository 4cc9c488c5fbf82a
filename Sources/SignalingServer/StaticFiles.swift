import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import NIOPosix

/// Serves the web app: `/` is `index.html`, `/r/<roomId>` is `room.html`, `/recordings` is
/// `recordings.html`, anything else a file by its path (`/recordings/FILE` falls through to `RecordingRoutes`).
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

    /// The `Public` folder of the package's resource bundle, found next to the executable.
    ///
    /// Looked up by hand rather than through `Bundle.module`, whose accessor stops the process when a copied
    /// binary has no bundle beside it; here a missing bundle only means no web app (use `--web-root`).
    static func bundledRoot() -> URL? {
        let names = ["vcall_SignalingServer.resources", "vcall_SignalingServer.bundle"]
        var folders = [Bundle.main.bundleURL]
        if let executable = Bundle.main.executableURL?.resolvingSymlinksInPath() {
            folders.append(executable.deletingLastPathComponent())
        }
        if let argument = CommandLine.arguments.first {
            folders.append(URL(fileURLWithPath: argument).resolvingSymlinksInPath().deletingLastPathComponent())
        }
        for folder in folders {
            for name in names {
                for candidate in [folder.appendingPathComponent(name).appendingPathComponent("Public"),
                                  folder.appendingPathComponent(name).appendingPathComponent("Contents/Resources/Public")] {
                    var isDirectory: ObjCBool = false
                    if FileManager.default.fileExists(atPath: candidate.path, isDirectory: &isDirectory), isDirectory.boolValue {
                        return candidate.standardizedFileURL
                    }
                }
            }
        }
        return nil
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
        if segments == ["recordings"] { return "recordings.html" }
        if segments.first == "api" || segments.first == "ws" { return nil }
        guard !segments.isEmpty,
            segments.allSatisfy({ !$0.hasPrefix(".") && !$0.contains("\\") && !$0.contains("\0") })
        else { return nil }
        return segments.joined(separator: "/")
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        if request.uri.path.hasPrefix("/api/") {
            // Unknown API paths answer in the API's JSON error shape.
            do {
                return try await next(request, context)
            } catch let error as HTTPError where error.status == .notFound {
                throw APIError(.notFound, "not-found", "no API endpoint \(request.method) \(request.uri.path): see docs/protocol.md")
            }
        }
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
