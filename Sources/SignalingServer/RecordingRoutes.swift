import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOPosix
import Recordings

/// `GET /api/recordings` and `GET /recordings/FILE`: the recordings folder (`--recordings DIR`) for the
/// accounts that may see each file.
///
/// A file is served only when it is a listed recording (a `.webm` with its report, in the folder itself)
/// that the asking account may see: a plain name in the folder (no `/`, no leading `.`) whose report names
/// it. To
/// everyone else (a guest, another account, a name with `..`) the answer is the same 404, so nobody
/// learns that a recording exists. Playback seeks with HTTP range requests (Hummingbird's `FileMiddleware`).
struct RecordingRoutes: Sendable {
    let catalog: RecordingCatalog?
    let files: FileMiddleware<BasicRequestContext, LocalFileSystem>?
    let accounts: AccountStore

    init(directory: String?, accounts: AccountStore, logger: Logger) {
        self.accounts = accounts
        guard let directory else {
            catalog = nil
            files = nil
            return
        }
        var isDirectory: ObjCBool = false
        if !FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory) || !isDirectory.boolValue {
            logger.warning("the recordings folder \(directory) does not exist yet: the list stays empty until a gateway records into it")
        }
        catalog = RecordingCatalog(directory: URL(fileURLWithPath: directory))
        files = FileMiddleware(directory, urlBasePath: "/recordings", cacheControl: .init([(MediaType(type: .video), [.noCache, .private])]),
                               searchForIndexHtml: false, logger: logger)
    }

    /// The logged-in account behind a request (a session, or a token a user made), with its admin flag.
    func viewer(of request: Request) async -> RecordingViewer? {
        guard let identity = await Authentication.identity(of: request, accounts: accounts).identity,
              let username = identity.username
        else { return nil }
        return RecordingViewer(username: username, isAdmin: (try? await accounts.isAdmin(username: username)) ?? false)
    }

    func add(to router: Router<BasicRequestContext>) {
        router.get("api/recordings") { request, _ -> Response in
            guard let viewer = await viewer(of: request) else {
                throw APIError(.unauthorized, "unauthorized", "log in to see recordings: each account sees the recordings of the rooms it was in")
            }
            let room = request.uri.queryParameters.get("room")
            let entries: [RecordingEntry]
            if let catalog {
                entries = try await NIOThreadPool.singleton.runIfActive {
                    catalog.entries(visibleTo: viewer).filter { room == nil || $0.room == room }
                }
            } else {
                entries = []
            }
            return jsonResponse(RecordingsResponse(recordings: entries, admin: viewer.isAdmin, enabled: catalog != nil))
        }

        router.get("recordings/:file") { request, context -> Response in
            guard let catalog, let files, let name = context.parameters.get("file"),
                  let viewer = await viewer(of: request),
                  try await NIOThreadPool.singleton.runIfActive({ catalog.entry(named: name, visibleTo: viewer) }) != nil
            else { throw HTTPError(.notFound, message: "no such recording") }
            return try await files.handle(request, context: context) { _, _ in throw HTTPError(.notFound, message: "no such recording") }
        }
    }
}

struct RecordingsResponse: Encodable {
    var recordings: [RecordingEntry]
    /// The account sees every recording.
    var admin: Bool
    /// The server has a recordings folder (`--recordings DIR`).
    var enabled: Bool
}
