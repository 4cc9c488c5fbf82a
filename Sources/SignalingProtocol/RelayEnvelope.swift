/// An `offer`, `answer`, `ice-candidate` or `track-map` recognized in a frame's bytes without decoding its
/// payload, so the server can relay the payload's bytes as they came instead of decoding and re-encoding a 4 KB SDP.
///
/// Recognizing only ever accepts: a frame it is not sure of (any JSON it does not check byte for byte,
/// an escape in a routing field, non-ASCII text, extra or duplicate fields, a candidate that lacks
/// `sdpMid`/`sdpMLineIndex`) gives `nil`, and the caller falls back to ``ClientMessage/parse(_:)``, which
/// reports errors. So what is relayed raw is exactly what `parse` would accept and re-encode to the same
/// values: the whole frame is valid JSON, `type`, `to` and `offer.type` obey the protocol's rules, and the
/// payload holds exactly the fields a relayed message carries. A `track-map` is recognized only with its
/// (required) `to` and a `tracks` array whose entries pass ``ClientMessage/validate()``.
///
/// ```swift
/// let frame = Array(#"{"type":"offer","to":"b2","offer":{"type":"offer","sdp":"v=0\r\n"}}"#.utf8)
/// let envelope = frame.withUnsafeBytes { RelayEnvelope.recognize($0) }
/// // envelope?.kind == .offer, envelope?.to == "b2", frame[envelope!.payload] is {"type":"offer","sdp":"v=0\r\n"}
/// ```
public struct RelayEnvelope: Sendable, Equatable {
    public enum Kind: String, Sendable {
        case offer
        case answer
        case iceCandidate = "ice-candidate"
        case trackMap = "track-map"

        /// The field that holds the payload: `offer`, `answer`, `candidate` or `tracks`.
        public var payloadField: String {
            switch self {
            case .offer: "offer"
            case .answer: "answer"
            case .iceCandidate: "candidate"
            case .trackMap: "tracks"
            }
        }
    }

    public var kind: Kind
    /// The target's id; nil when absent or null (never for `track-map`, which needs one).
    public var to: String?
    /// Where the payload's JSON value (an object, `null` for the end of candidates, or the track map's array)
    /// lies in the frame.
    public var payload: Range<Int>

    public init(kind: Kind, to: String?, payload: Range<Int>) {
        self.kind = kind
        self.to = to
        self.payload = payload
    }

    /// The relay message in `frame`, or nil when the frame must go through ``ClientMessage/parse(_:)``.
    public static func recognize(_ frame: UnsafeRawBufferPointer) -> RelayEnvelope? {
        var scanner = JSONScanner(frame)
        guard let fields = scanner.topLevelFields(), fields.isComplete else { return nil }
        guard let typeValue = fields.type, let type = scanner.plainString(typeValue), let kind = Kind(rawValue: type) else {
            return nil
        }
        var to: String?
        if let toValue = fields.to, !scanner.isNull(toValue) {
            guard let peer = scanner.plainString(toValue), !peer.isEmpty, peer.utf8.count <= SignalingLimits.maxPeerIDLength else {
                return nil
            }
            to = peer
        }
        let payload: Range<Int>?
        switch kind {
        case .offer: payload = fields.offer
        case .answer: payload = fields.answer
        case .iceCandidate: payload = fields.candidate
        case .trackMap: payload = fields.tracks
        }
        guard let payload else { return nil }
        let valid: Bool
        switch kind {
        case .offer, .answer: valid = scanner.isRelayableDescription(payload)
        case .iceCandidate: valid = scanner.isRelayableCandidate(payload)
        // A map without `to` is an error the full parser reports.
        case .trackMap: valid = to != nil && scanner.isRelayableTrackMap(payload)
        }
        return valid ? RelayEnvelope(kind: kind, to: to, payload: payload) : nil
    }
}

/// A strict JSON scanner over a frame's bytes: it checks the grammar (RFC 8259) and notes where values lie.
/// It gives up (nil or false) on what it does not need to handle quickly: `\u` escapes, non-ASCII bytes,
/// nesting deeper than `maxDepth`.
struct JSONScanner {
    let bytes: UnsafeRawBufferPointer
    var index = 0
    static let maxDepth = 32

    init(_ bytes: UnsafeRawBufferPointer) {
        self.bytes = bytes
    }

    /// Where the top-level fields a relay message uses lie; other fields are checked and skipped.
    struct TopLevelFields {
        var type: Range<Int>?
        var to: Range<Int>?
        var offer: Range<Int>?
        var answer: Range<Int>?
        var candidate: Range<Int>?
        var tracks: Range<Int>?
        /// False when a field we use appeared twice, or a key held an escape (it could spell one of ours).
        var isComplete = true
    }

    mutating func topLevelFields() -> TopLevelFields? {
        var fields = TopLevelFields()
        let scanned = object(depth: 0) { scanner, key, value in
            guard let key else {
                fields.isComplete = false
                return
            }
            let field: WritableKeyPath<TopLevelFields, Range<Int>?>
            switch key {
            case "type": field = \.type
            case "to": field = \.to
            case "offer": field = \.offer
            case "answer": field = \.answer
            case "candidate": field = \.candidate
            case "tracks": field = \.tracks
            default: return
            }
            if fields[keyPath: field] != nil { fields.isComplete = false }
            fields[keyPath: field] = value
        }
        skipWhitespace()
        guard scanned, index == bytes.count else { return nil }
        return fields
    }

    /// `{type, sdp}` and nothing else, `type` one of the SDP types.
    func isRelayableDescription(_ range: Range<Int>) -> Bool {
        var type: String?
        var sdp = false
        return fields(of: range, allowed: Self.descriptionFields, required: 2) { scanner, key, value in
            switch key {
            case "type": type = scanner.plainString(value)
            default: sdp = scanner.isString(value)
            }
        } && sdp && type.map(SignalingLimits.sdpTypes.contains) == true
    }

    /// `null`, or `{candidate, sdpMid, sdpMLineIndex, usernameFragment?}` with the protocol's types, both
    /// `sdpMid` and `sdpMLineIndex` present (the relayed form always has them) and nothing else.
    func isRelayableCandidate(_ range: Range<Int>) -> Bool {
        if isNull(range) { return true }
        var typesMatch = true
        return fields(of: range, allowed: Self.candidateFields, required: 3) { scanner, key, value in
            switch key {
            case "sdpMid": typesMatch = typesMatch && (scanner.isString(value) || scanner.isNull(value))
            case "sdpMLineIndex": typesMatch = typesMatch && (scanner.isInt(value) || scanner.isNull(value))
            default: typesMatch = typesMatch && scanner.isString(value)
            }
        } && typesMatch
    }

    /// An array of at most 256 `{mid, participant, kind}`, each with all three fields and nothing else: `mid` a
    /// string of 1–32 characters, `participant` of 1–64, `kind` `audio` or `video` (no escapes anywhere, so
    /// byte counts are character counts).
    func isRelayableTrackMap(_ range: Range<Int>) -> Bool {
        var scanner = JSONScanner(bytes)
        scanner.index = range.lowerBound
        var entries = 0
        var acceptable = true
        let scanned = scanner.array(depth: 1) { scanner, element in
            entries += 1
            acceptable = acceptable && entries <= SignalingLimits.maxTrackMapEntries && scanner.isRelayableTrackMapEntry(element)
        }
        return scanned && acceptable && scanner.index == range.upperBound
    }

    private func isRelayableTrackMapEntry(_ range: Range<Int>) -> Bool {
        guard bytes[range.lowerBound] == UInt8(ascii: "{") else { return false }
        var typesMatch = true
        return fields(of: range, allowed: Self.trackMapEntryFields, required: 3) { scanner, key, value in
            guard let text = scanner.plainString(value) else {
                typesMatch = false
                return
            }
            switch key {
            case "mid": typesMatch = typesMatch && (1...SignalingLimits.maxMidLength).contains(text.utf8.count)
            case "participant": typesMatch = typesMatch && (1...SignalingLimits.maxPeerIDLength).contains(text.utf8.count)
            default: typesMatch = typesMatch && TrackMapEntry.Kind(rawValue: text) != nil
            }
        } && typesMatch
    }

    static let descriptionFields = ["type", "sdp"]
    static let candidateFields = ["candidate", "sdpMid", "sdpMLineIndex", "usernameFragment"]
    static let trackMapEntryFields = ["mid", "participant", "kind"]

    /// Scans the object at `range`: true when its keys are distinct, plain, all in `allowed` and include the
    /// first `required` of them; `check` sees each field.
    private func fields(
        of range: Range<Int>, allowed: [String], required: Int, _ check: (JSONScanner, String, Range<Int>) -> Void
    ) -> Bool {
        var scanner = JSONScanner(bytes)
        scanner.index = range.lowerBound
        // Bit n set: allowed[n] was seen (a bit mask, so no set is allocated per message).
        var seen: UInt32 = 0
        var acceptable = true
        let scanned = scanner.object(depth: 1) { scanner, key, value in
            guard let key, let position = allowed.firstIndex(of: key), seen & (1 << position) == 0 else {
                acceptable = false
                return
            }
            seen |= 1 << position
            check(scanner, key, value)
        }
        let requiredBits: UInt32 = (1 << required) - 1
        return scanned && acceptable && scanner.index == range.upperBound && seen & requiredBits == requiredBits
    }

    // MARK: values

    func isNull(_ range: Range<Int>) -> Bool {
        range.count == 4 && bytes[range.lowerBound] == UInt8(ascii: "n")
    }

    func isString(_ range: Range<Int>) -> Bool {
        bytes[range.lowerBound] == UInt8(ascii: "\"")
    }

    /// A JSON integer that fits an `Int` comfortably: `-?digits`, at most 18 digits.
    func isInt(_ range: Range<Int>) -> Bool {
        var digits = range
        if bytes[digits.lowerBound] == UInt8(ascii: "-") { digits = digits.dropFirst() }
        return !digits.isEmpty && digits.count <= 18 && digits.allSatisfy { isDigit(bytes[$0]) }
    }

    /// A string value without escapes, as a Swift string; nil for any other value.
    func plainString(_ range: Range<Int>) -> String? {
        guard range.count >= 2, isString(range) else { return nil }
        let content = UnsafeRawBufferPointer(rebasing: bytes[(range.lowerBound + 1)..<(range.upperBound - 1)])
        guard !content.contains(UInt8(ascii: "\\")) else { return nil }
        return String(decoding: content, as: UTF8.self)
    }

    // MARK: grammar

    /// Scans an object, calling `field` with each key (nil when it holds an escape) and its value's range.
    mutating func object(depth: Int, _ field: (JSONScanner, String?, Range<Int>) -> Void) -> Bool {
        skipWhitespace()
        guard depth < Self.maxDepth, take(UInt8(ascii: "{")) else { return false }
        skipWhitespace()
        if take(UInt8(ascii: "}")) { return true }
        while true {
            skipWhitespace()
            let keyStart = index
            guard string() else { return false }
            let key = plainString(keyStart..<index)
            skipWhitespace()
            guard take(UInt8(ascii: ":")) else { return false }
            skipWhitespace()
            let valueStart = index
            guard value(depth: depth + 1) else { return false }
            field(self, key, valueStart..<index)
            skipWhitespace()
            if take(UInt8(ascii: ",")) { continue }
            return take(UInt8(ascii: "}"))
        }
    }

    /// Scans an array, calling `element` with each element's range.
    mutating func array(depth: Int, _ element: (JSONScanner, Range<Int>) -> Void) -> Bool {
        skipWhitespace()
        guard depth < Self.maxDepth, take(UInt8(ascii: "[")) else { return false }
        skipWhitespace()
        if take(UInt8(ascii: "]")) { return true }
        while true {
            skipWhitespace()
            let elementStart = index
            guard value(depth: depth + 1) else { return false }
            element(self, elementStart..<index)
            skipWhitespace()
            if take(UInt8(ascii: ",")) { continue }
            return take(UInt8(ascii: "]"))
        }
    }

    mutating func value(depth: Int) -> Bool {
        guard index < bytes.count else { return false }
        switch bytes[index] {
        case UInt8(ascii: "{"):
            return object(depth: depth) { _, _, _ in }
        case UInt8(ascii: "["):
            return array(depth: depth) { _, _ in }
        case UInt8(ascii: "\""):
            return string()
        case UInt8(ascii: "t"):
            return literal("true")
        case UInt8(ascii: "f"):
            return literal("false")
        case UInt8(ascii: "n"):
            return literal("null")
        default:
            return number()
        }
    }

    /// A string with its quotes. Escapes other than `\u` are allowed; control characters and non-ASCII are not.
    mutating func string() -> Bool {
        guard take(UInt8(ascii: "\"")) else { return false }
        while index < bytes.count {
            // Eight plain bytes at a time (an SDP is mostly plain text): skip words holding no quote, backslash,
            // control character or non-ASCII byte.
            while bytes.count - index >= 8, Self.isPlain(bytes.loadUnaligned(fromByteOffset: index, as: UInt64.self)) {
                index += 8
            }
            let byte = bytes[index]
            index += 1
            switch byte {
            case UInt8(ascii: "\""):
                return true
            case UInt8(ascii: "\\"):
                guard index < bytes.count else { return false }
                switch bytes[index] {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"), UInt8(ascii: "f"),
                     UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
                    index += 1
                default:
                    return false
                }
            case 0..<0x20, 0x80...:
                return false
            default:
                continue
            }
        }
        return false
    }

    /// Whether none of a word's eight bytes needs a look inside a string: no `"`, `\`, byte below 0x20 or
    /// above 0x7F (the classic "has zero byte" bit trick, per byte).
    static func isPlain(_ word: UInt64) -> Bool {
        let ones: UInt64 = 0x0101_0101_0101_0101
        let highs: UInt64 = 0x8080_8080_8080_8080
        func hasZeroByte(_ x: UInt64) -> Bool { (x &- ones) & ~x & highs != 0 }
        let hasControl = (word &- ones &* 0x20) & ~word & highs != 0
        return word & highs == 0 && !hasControl && !hasZeroByte(word ^ (ones &* 0x22)) && !hasZeroByte(word ^ (ones &* 0x5C))
    }

    mutating func number() -> Bool {
        _ = take(UInt8(ascii: "-"))
        if take(UInt8(ascii: "0")) {
            // No leading zeros.
        } else {
            guard digits() else { return false }
        }
        if take(UInt8(ascii: ".")) {
            guard digits() else { return false }
        }
        if take(UInt8(ascii: "e")) || take(UInt8(ascii: "E")) {
            if !take(UInt8(ascii: "+")) { _ = take(UInt8(ascii: "-")) }
            guard digits() else { return false }
        }
        return true
    }

    private mutating func digits() -> Bool {
        let start = index
        while index < bytes.count, isDigit(bytes[index]) { index += 1 }
        return index > start
    }

    private mutating func literal(_ word: StaticString) -> Bool {
        let count = word.utf8CodeUnitCount
        guard bytes.count - index >= count else { return false }
        for offset in 0..<count where bytes[index + offset] != word.utf8Start[offset] { return false }
        index += count
        return true
    }

    private mutating func take(_ byte: UInt8) -> Bool {
        guard index < bytes.count, bytes[index] == byte else { return false }
        index += 1
        return true
    }

    private mutating func skipWhitespace() {
        while index < bytes.count {
            switch bytes[index] {
            case UInt8(ascii: " "), UInt8(ascii: "\n"), UInt8(ascii: "\r"), UInt8(ascii: "\t"): index += 1
            default: return
            }
        }
    }

    private func isDigit(_ byte: UInt8) -> Bool {
        byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")
    }
}
