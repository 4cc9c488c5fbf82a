import Foundation
import WebRTC

/// The media sources in `pipelines/`: GStreamer launch descriptions a user can read and change
/// without rebuilding, picked by name (`test`, `camera`, `screen`, `mic`, `none`, …) or by path.
///
/// A `.pipeline` file describes a *source only* (no scaling, no encoding: `MediaInput` does that). It may
/// hold comment lines starting with `#` and parameters written `${name}` or `${name:-default}`.
/// A parameter's value comes, in order, from the `parameters` passed in, from the environment variable
/// `VCALL_<NAME>` (upper case, `-` as `_`), from a few conventional variables (`display` ← `$DISPLAY`),
/// then from the default; a parameter with none of these is an error.
///
/// ```swift
/// let library = try PipelineLibrary()
/// let camera = try library.resolve("camera", kind: .video, parameters: ["device": "/dev/video2"])
/// print(camera.description)   // v4l2src device=/dev/video2 do-timestamp=true
/// ```
public struct PipelineLibrary: Sendable {
    /// The folder holding `video/` and `audio/`.
    public let directory: URL
    /// The environment parameters fall back to (the process's by default).
    public let environment: [String: String]

    /// A source resolved to the launch description `MediaInput` builds.
    public struct Resolved: Sendable, Equatable {
        /// The name it was asked for (`test`), or the file's path for a file of the user's own.
        public let name: String
        public let file: URL
        /// The launch description with comments stripped and parameters substituted.
        public let description: String
        /// The parameter values used, by name.
        public let parameters: [String: String]
    }

    /// Conventional environment variables standing in for parameters of the same meaning.
    public static let environmentAliases: [String: String] = ["display": "DISPLAY"]

    /// Uses `directory` if given; else `$VCALL_PIPELINES`; else `./pipelines` in the current directory;
    /// else the `pipelines/` folder of the checkout this file was built from.
    public init(directory: URL? = nil, environment: [String: String] = ProcessInfo.processInfo.environment) throws {
        self.environment = environment
        if let directory {
            guard Self.isDirectory(directory) else {
                throw GatewayError.source("no pipelines folder at \(directory.path): pass a folder holding video/ and audio/")
            }
            self.directory = directory
            return
        }
        if let fromEnvironment = environment["VCALL_PIPELINES"], !fromEnvironment.isEmpty {
            let url = URL(fileURLWithPath: fromEnvironment, isDirectory: true)
            guard Self.isDirectory(url) else {
                throw GatewayError.source("VCALL_PIPELINES=\(fromEnvironment) is not a folder: point it at a folder holding video/ and audio/, or unset it")
            }
            self.directory = url
            return
        }
        let candidates = [
            URL(fileURLWithPath: FileManager.default.currentDirectoryPath, isDirectory: true).appendingPathComponent("pipelines"),
            // Sources/Gateway/PipelineLibrary.swift → the checkout's pipelines/ (the binary usually runs from a checkout).
            URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
                .deletingLastPathComponent().appendingPathComponent("pipelines"),
        ]
        guard let found = candidates.first(where: { Self.isDirectory($0.appendingPathComponent("video")) || Self.isDirectory($0.appendingPathComponent("audio")) }) else {
            throw GatewayError.source("no pipelines folder found (looked in \(candidates.map(\.path).joined(separator: " and "))): set VCALL_PIPELINES to the vcall checkout's pipelines/ folder")
        }
        self.directory = found
    }

    /// The names available for `kind`, sorted (the `.pipeline` files in `video/` or `audio/`).
    public func available(_ kind: MediaKind) -> [String] {
        let folder = directory.appendingPathComponent(kind.rawValue, isDirectory: true)
        let files = (try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []
        return files.filter { $0.hasSuffix(".pipeline") }.map { String($0.dropLast(".pipeline".count)) }.sorted()
    }

    /// Whether `source` names a file rather than a pipeline of the library.
    public static func isPath(_ source: String) -> Bool {
        source.contains("/") || source.hasSuffix(".pipeline")
    }

    /// The file `source` stands for: `pipelines/<kind>/<source>.pipeline`, or the path itself.
    public func file(for source: String, kind: MediaKind) throws -> URL {
        if Self.isPath(source) {
            let url = URL(fileURLWithPath: (source as NSString).expandingTildeInPath)
            guard FileManager.default.fileExists(atPath: url.path) else {
                throw GatewayError.source("no pipeline file at \(source): check the path, or use one of \(available(kind).joined(separator: ", "))")
            }
            return url
        }
        let url = directory.appendingPathComponent(kind.rawValue, isDirectory: true).appendingPathComponent("\(source).pipeline")
        guard FileManager.default.fileExists(atPath: url.path) else {
            let names = available(kind)
            let list = names.isEmpty ? "none are installed in \(directory.path)/\(kind.rawValue)" : "use one of \(names.joined(separator: ", "))"
            throw GatewayError.source("unknown \(kind) source '\(source)': \(list), or a path to a .pipeline file")
        }
        return url
    }

    /// Reads `source`'s file, strips its comments and substitutes its parameters.
    public func resolve(_ source: String, kind: MediaKind, parameters: [String: String] = [:]) throws -> Resolved {
        let url = try file(for: source, kind: kind)
        let text: String
        do {
            text = try String(contentsOf: url, encoding: .utf8)
        } catch {
            throw GatewayError.source("cannot read \(url.path): \(Self.reason(error)); check that it exists and is readable")
        }
        let origin = Self.isPath(source) ? url.path : "pipelines/\(kind.rawValue)/\(source).pipeline"
        let (description, used) = try Self.expand(text, parameters: parameters, environment: environment, origin: origin)
        guard !description.isEmpty else {
            throw GatewayError.source("\(origin) holds no pipeline (only comments or blank lines): write a source such as 'videotestsrc is-live=true'")
        }
        return Resolved(name: source, file: url, description: description, parameters: used)
    }

    /// Strips comment lines (first non-blank character `#`), joins the rest with spaces and substitutes
    /// `${name}` / `${name:-default}`. Returns the description and the values used.
    public static func expand(_ text: String, parameters: [String: String] = [:], environment: [String: String] = [:],
                              origin: String = "the pipeline") throws -> (description: String, parameters: [String: String]) {
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
            .map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
            .filter { !$0.isEmpty && !$0.hasPrefix("#") }
        let joined = lines.joined(separator: " ")
        var result = ""
        var used: [String: String] = [:]
        var rest = joined[...]
        while let start = rest.range(of: "${") {
            result += rest[..<start.lowerBound]
            guard let end = rest[start.upperBound...].firstIndex(of: "}") else {
                throw GatewayError.source("\(origin): '${' without a closing '}': write parameters as ${name} or ${name:-default}")
            }
            let body = rest[start.upperBound..<end]
            let name: Substring, fallback: Substring?
            if let separator = body.range(of: ":-") {
                name = body[..<separator.lowerBound]
                fallback = body[separator.upperBound...]
            } else {
                name = body
                fallback = nil
            }
            guard isParameterName(name) else {
                throw GatewayError.source("\(origin): '${\(body)}' is not a parameter: names use letters, digits, '_' and '-' (${name} or ${name:-default})")
            }
            let key = String(name)
            guard let value = parameters[key] ?? environmentValue(for: key, in: environment) ?? fallback.map(String.init) else {
                throw GatewayError.source("\(origin) needs a value for ${\(key)}: \(howToSet(key))")
            }
            used[key] = value
            result += value
            rest = rest[rest.index(after: end)...]
        }
        result += rest
        return (result.trimmingCharacters(in: .whitespaces), used)
    }

    /// The environment variable that can set parameter `name`: `VCALL_NAME`.
    public static func environmentVariable(for name: String) -> String {
        "VCALL_" + name.uppercased().replacingOccurrences(of: "-", with: "_")
    }

    private static func environmentValue(for name: String, in environment: [String: String]) -> String? {
        if let value = environment[environmentVariable(for: name)], !value.isEmpty { return value }
        if let alias = environmentAliases[name], let value = environment[alias], !value.isEmpty { return value }
        return nil
    }

    private static func howToSet(_ name: String) -> String {
        var ways = "pass it (for example --\(name) VALUE) or set \(environmentVariable(for: name))"
        if let alias = environmentAliases[name] { ways += " or \(alias)" }
        if name == "display" { ways += " (no X display: start one, for example Xvfb :99, or use --video test)" }
        return ways
    }

    private static func isParameterName(_ name: Substring) -> Bool {
        guard let first = name.first, first.isLetter || first == "_" else { return false }
        return name.allSatisfy { $0.isLetter || $0.isNumber || $0 == "_" || $0 == "-" }
    }

    private static func isDirectory(_ url: URL) -> Bool {
        var isDirectory: ObjCBool = false
        return FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory) && isDirectory.boolValue
    }

    private static func reason(_ error: Error) -> String {
        let nsError = error as NSError
        if let underlying = nsError.userInfo[NSUnderlyingErrorKey] as? NSError {
            return String(cString: strerror(Int32(underlying.code)))
        }
        return nsError.localizedDescription
    }
}
