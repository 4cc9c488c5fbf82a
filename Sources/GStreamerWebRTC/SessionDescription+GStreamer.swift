import CGStreamer
import GStreamer
import WebRTCTypes

/// Why a session description could not be handed to webrtcbin.
public enum SessionDescriptionError: Error, Sendable, Equatable, CustomStringConvertible {
    /// GStreamer's SDP parser refused the text.
    case unparsableSDP
    /// The parsed SDP could not be wrapped as a `GstWebRTCSessionDescription`.
    case refused

    public var description: String {
        switch self {
        case .unparsableSDP: "the SDP could not be parsed"
        case .refused: "webrtcbin refused the description"
        }
    }
}

extension RTCSessionDescriptionInit {
    /// The description as webrtcbin takes it in `set-local-description` and `set-remote-description`:
    /// the SDP parsed by GStreamer's SDP library into a boxed `GstWebRTCSessionDescription`.
    public func webrtcbinValue() throws(SessionDescriptionError) -> Value {
        var message: UnsafeMutablePointer<GstSDPMessage>?
        guard gst_sdp_message_new_from_text(sdp, &message) == GST_SDP_OK, let message else { throw .unparsableSDP }
        let gstType: GstWebRTCSDPType = switch type {
        case .offer: GST_WEBRTC_SDP_TYPE_OFFER
        case .answer: GST_WEBRTC_SDP_TYPE_ANSWER
        case .pranswer: GST_WEBRTC_SDP_TYPE_PRANSWER
        case .rollback: GST_WEBRTC_SDP_TYPE_ROLLBACK
        }
        // The description takes ownership of the message.
        guard let made = gst_webrtc_session_description_new(gstType, message) else {
            gst_sdp_message_free(message)
            throw .refused
        }
        return .boxed(Boxed(adopting: UnsafeMutableRawPointer(made), type: gst_webrtc_session_description_get_type()))
    }

    /// Reads a `GstWebRTCSessionDescription` (a promise reply's `offer` or `answer`, webrtcbin's
    /// `local-description`), printing its SDP as text. nil if `value` holds none.
    public init?(webrtcbinValue value: Value?) {
        guard case .boxed(let boxed)? = value, boxed.type == gst_webrtc_session_description_get_type() else { return nil }
        let description = boxed.pointer.assumingMemoryBound(to: GstWebRTCSessionDescription.self)
        guard let text = gst_sdp_message_as_text(description.pointee.sdp) else { return nil }
        defer { g_free(text) }
        let type: RTCSdpType = switch description.pointee.type {
        case GST_WEBRTC_SDP_TYPE_OFFER: .offer
        case GST_WEBRTC_SDP_TYPE_PRANSWER: .pranswer
        case GST_WEBRTC_SDP_TYPE_ROLLBACK: .rollback
        default: .answer
        }
        self.init(type: type, sdp: String(cString: text))
    }
}
