import Foundation
import Gateway
import GStreamer
import Testing
import WebRTC

@Suite("Pipeline library: finding, reading and filling in pipelines/")
struct PipelineLibraryTests {
    /// A scratch library folder with the given files (relative path → text), removed by the caller.
    func scratchLibrary(_ files: [String: String]) throws -> URL {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("vcall-pipelines-\(UUID().uuidString)")
        for (path, text) in files {
            let url = folder.appendingPathComponent(path)
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try text.write(to: url, atomically: true, encoding: .utf8)
        }
        return folder
    }

    @Test("the repository's library has every source, and each one parses into a GStreamer bin")
    func repositorySourcesParse() throws {
        let library = try PipelineLibrary(environment: [:])
        #expect(library.available(.video) == ["camera", "none", "screen", "test"])
        #expect(library.available(.audio) == ["mic", "none", "test"])
        for kind in [MediaKind.video, .audio] {
            for name in library.available(kind) {
                let resolved = try library.resolve(name, kind: kind, parameters: ["display": ":0"])
                #expect(!resolved.description.contains("#"), "\(name): comments are stripped")
                #expect(!resolved.description.contains("${"), "\(name): parameters are filled in")
                let bin = try Bin(launch: resolved.description)
                #expect(bin.staticPad("src") != nil, "\(kind) \(name) has one output")
            }
        }
        #expect(try library.resolve("camera", kind: .video).description == "v4l2src device=/dev/video0")
    }

    @Test("parameters come from the caller, then VCALL_<NAME>, then DISPLAY for display, then the default")
    func substitutionOrder() throws {
        let text = "# ${ignored} in a comment needs no value\nv4l2src device=${device:-/dev/video0}\n  ! fakesink name=${sink-name:-out}"
        let plain = try PipelineLibrary.expand(text)
        #expect(plain.description == "v4l2src device=/dev/video0 ! fakesink name=out")
        #expect(plain.parameters == ["device": "/dev/video0", "sink-name": "out"])
        let fromEnvironment = try PipelineLibrary.expand(text, environment: ["VCALL_DEVICE": "/dev/video7", "VCALL_SINK_NAME": "s"])
        #expect(fromEnvironment.description == "v4l2src device=/dev/video7 ! fakesink name=s")
        let fromCaller = try PipelineLibrary.expand(text, parameters: ["device": "/dev/video9"], environment: ["VCALL_DEVICE": "/dev/video7"])
        #expect(fromCaller.description.hasPrefix("v4l2src device=/dev/video9 "))
        let display = try PipelineLibrary.expand("ximagesrc display-name=${display}", environment: ["DISPLAY": ":42"])
        #expect(display.description == "ximagesrc display-name=:42")
        let emptyDefault = try PipelineLibrary.expand("a${x:-}b")
        #expect(emptyDefault.description == "ab")
    }

    @Test("a parameter with no value and no default is an error naming it and how to set it")
    func missingParameter() throws {
        let library = try PipelineLibrary(environment: [:])
        #expect {
            try library.resolve("screen", kind: .video)
        } throws: { error in
            let text = "\(error)"
            return error is GatewayError && text.contains("pipelines/video/screen.pipeline needs a value for ${display}")
                && text.contains("VCALL_DISPLAY") && text.contains("DISPLAY") && text.contains("--video test")
        }
        #expect(throws: GatewayError.self) { try PipelineLibrary.expand("src ${unclosed") }
        #expect(throws: GatewayError.self) { try PipelineLibrary.expand("src ${1bad}") }
    }

    @Test("an unknown name lists the available ones; a missing or unreadable file says which")
    func unknownAndUnreadable() throws {
        let folder = try scratchLibrary([
            "video/alpha.pipeline": "videotestsrc is-live=true",
            "video/beta.pipeline": "# only a comment\n\n",
            "video/gamma.pipeline/placeholder": "a folder named like a pipeline cannot be read",
        ])
        defer { try? FileManager.default.removeItem(at: folder) }
        let library = try PipelineLibrary(directory: folder, environment: [:])
        #expect(library.available(.video) == ["alpha", "beta", "gamma"])
        #expect(library.available(.audio) == [])
        #expect(try library.resolve("alpha", kind: .video).description == "videotestsrc is-live=true")
        #expect {
            try library.resolve("webcam", kind: .video)
        } throws: { "\($0)" == "unknown video source 'webcam': use one of alpha, beta, gamma, or a path to a .pipeline file" }
        #expect {
            try library.resolve("beta", kind: .video)
        } throws: { "\($0)".contains("holds no pipeline") }
        #expect {
            try library.resolve("gamma", kind: .video)
        } throws: { "\($0)".hasPrefix("cannot read \(folder.path)/video/gamma.pipeline") }
        #expect {
            try library.resolve("/nonexistent/mine.pipeline", kind: .video)
        } throws: { "\($0)".hasPrefix("no pipeline file at /nonexistent/mine.pipeline") }
        // A file of the user's own, by path.
        let own = folder.appendingPathComponent("video/alpha.pipeline").path
        #expect(try library.resolve(own, kind: .video).name == own)
    }

    @Test("the folder comes from the argument, else VCALL_PIPELINES, else ./pipelines or the checkout's")
    func locatesFolder() throws {
        let folder = try scratchLibrary(["audio/tone.pipeline": "audiotestsrc is-live=true"])
        defer { try? FileManager.default.removeItem(at: folder) }
        #expect(try PipelineLibrary(directory: folder).directory == folder)
        #expect(try PipelineLibrary(environment: ["VCALL_PIPELINES": folder.path]).available(.audio) == ["tone"])
        #expect(throws: GatewayError.self) { try PipelineLibrary(environment: ["VCALL_PIPELINES": "/nonexistent/pipelines"]) }
        let found = try PipelineLibrary(environment: [:])
        #expect(FileManager.default.fileExists(atPath: found.directory.appendingPathComponent("video/test.pipeline").path))
    }
}
