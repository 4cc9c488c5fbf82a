import Foundation

/// Where a recording goes: `DIR/ROOM-PARTICIPANT-UTCSTART.webm`, a name claimed atomically.
extension ParticipantRecorder {
    /// `DIR/ROOM-PARTICIPANT-20261121T203000Z.webm`, with `-2`, `-3`… if that name is taken.
    static func makeFile(in directory: URL, room: String, participant: String, start: Date) throws -> URL {
        do {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        } catch {
            throw GatewayError.recording("cannot create the recording directory \(directory.path): \(error.localizedDescription); use --record DIR elsewhere")
        }
        guard FileManager.default.isWritableFile(atPath: directory.path) else {
            throw GatewayError.recording("cannot write in \(directory.path): permission denied; use --record DIR elsewhere")
        }
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyyMMdd'T'HHmmss'Z'"
        let base = "\(fileNameComponent(room))-\(fileNameComponent(participant))-\(formatter.string(from: start))"
        var candidate = directory.appendingPathComponent("\(base).webm")
        var suffix = 2
        // O_EXCL creation claims the name, so two recorders starting in the same second never share a file.
        while !createExclusively(candidate.path) {
            candidate = directory.appendingPathComponent("\(base)-\(suffix).webm")
            suffix += 1
            guard suffix < 1000 else { throw GatewayError.recording("cannot create a file named \(base)….webm in \(directory.path)") }
        }
        return candidate
    }

    /// A name part safe on every common file system and in a shell: letters and digits of any script, `-`
    /// and `_`; any run of other characters (dots and slashes too) becomes one `_`; at most 60 characters; never empty.
    public static func fileNameComponent(_ text: String) -> String {
        var result = ""
        for character in text {
            if character.isLetter || character.isNumber || character == "-" {
                result.append(character)
            } else if !result.hasSuffix("_") {
                result.append("_")
            }
        }
        result = String(result.prefix(60))
        return result.isEmpty ? "unnamed" : result
    }
}

/// Creates an empty file with O_EXCL; false if it exists (or cannot be made).
private func createExclusively(_ path: String) -> Bool {
    let descriptor = open(path, O_WRONLY | O_CREAT | O_EXCL, 0o644)
    guard descriptor >= 0 else { return false }
    close(descriptor)
    return true
}
