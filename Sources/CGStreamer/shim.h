// The C side of vcall's GStreamer binding: GStreamer's headers plus small inline functions for what
// Swift cannot call directly (function-like macros, type-check casts, fields behind bitfields).
// Every function here is prefixed `vcall_`. The only other C in the project is CDTLSCertificate.
#ifndef VCALL_CGSTREAMER_SHIM_H
#define VCALL_CGSTREAMER_SHIM_H

#define GST_USE_UNSTABLE_API 1
#include <gst/gst.h>
#include <gst/sdp/sdp.h>
#include <gst/webrtc/webrtc.h>
#include <gst/video/video.h>
#include <gst/rtp/rtp.h>

// MARK: fundamental GTypes (macros in GLib)
static inline GType vcall_type_invalid(void) { return G_TYPE_INVALID; }
static inline GType vcall_type_boolean(void) { return G_TYPE_BOOLEAN; }
static inline GType vcall_type_int(void) { return G_TYPE_INT; }
static inline GType vcall_type_uint(void) { return G_TYPE_UINT; }
static inline GType vcall_type_long(void) { return G_TYPE_LONG; }
static inline GType vcall_type_ulong(void) { return G_TYPE_ULONG; }
static inline GType vcall_type_int64(void) { return G_TYPE_INT64; }
static inline GType vcall_type_uint64(void) { return G_TYPE_UINT64; }
static inline GType vcall_type_float(void) { return G_TYPE_FLOAT; }
static inline GType vcall_type_double(void) { return G_TYPE_DOUBLE; }
static inline GType vcall_type_string(void) { return G_TYPE_STRING; }
static inline GType vcall_type_enum(void) { return G_TYPE_ENUM; }
static inline GType vcall_type_flags(void) { return G_TYPE_FLAGS; }
static inline GType vcall_type_object(void) { return G_TYPE_OBJECT; }
static inline GType vcall_type_boxed(void) { return G_TYPE_BOXED; }
static inline GType vcall_type_pointer(void) { return G_TYPE_POINTER; }
static inline GType vcall_type_none(void) { return G_TYPE_NONE; }
static inline GType vcall_type_fundamental(GType type) { return G_TYPE_FUNDAMENTAL(type); }

static inline GType vcall_type_caps(void) { return GST_TYPE_CAPS; }
static inline GType vcall_type_structure(void) { return GST_TYPE_STRUCTURE; }
static inline GType vcall_type_promise(void) { return GST_TYPE_PROMISE; }
static inline GType vcall_type_element(void) { return GST_TYPE_ELEMENT; }
static inline GType vcall_type_bin(void) { return GST_TYPE_BIN; }
static inline GType vcall_type_pipeline(void) { return GST_TYPE_PIPELINE; }
static inline GType vcall_type_pad(void) { return GST_TYPE_PAD; }
static inline GType vcall_type_value_list(void) { return GST_TYPE_LIST; }
static inline GType vcall_type_value_array(void) { return GST_TYPE_ARRAY; }
static inline GType vcall_type_fraction(void) { return GST_TYPE_FRACTION; }

// MARK: instance helpers (macros in GObject)
static inline GType vcall_object_type(gpointer object) { return G_OBJECT_TYPE(object); }
static inline const gchar *vcall_object_type_name(gpointer object) { return G_OBJECT_TYPE_NAME(object); }
static inline gboolean vcall_is_a(gpointer object, GType type) {
  return object != NULL && G_TYPE_CHECK_INSTANCE_TYPE(object, type);
}
static inline guint vcall_object_refcount(gpointer object) { return G_OBJECT(object)->ref_count; }
static inline GParamSpec *vcall_find_property(gpointer object, const gchar *name) {
  return g_object_class_find_property(G_OBJECT_GET_CLASS(object), name);
}
static inline GType vcall_param_value_type(GParamSpec *spec) { return G_PARAM_SPEC_VALUE_TYPE(spec); }
static inline gboolean vcall_param_is_writable(GParamSpec *spec) { return (spec->flags & G_PARAM_WRITABLE) != 0; }
static inline gboolean vcall_param_is_readable(GParamSpec *spec) { return (spec->flags & G_PARAM_READABLE) != 0; }
static inline const gchar *vcall_param_name(GParamSpec *spec) { return spec->name; }

static inline GstElementClass *vcall_element_class(GstElement *element) { return GST_ELEMENT_GET_CLASS(element); }

// MARK: GValue
static inline GType vcall_value_type(const GValue *value) { return G_VALUE_TYPE(value); }
static inline gboolean vcall_value_holds(const GValue *value, GType type) { return G_VALUE_HOLDS(value, type); }

// MARK: closures (GClosure's fields sit behind bitfields)
static inline gpointer vcall_closure_data(GClosure *closure) { return closure->data; }

// MARK: GStreamer macros
static inline GstClockTime vcall_clock_time_none(void) { return GST_CLOCK_TIME_NONE; }
static inline GstClockTime vcall_second(void) { return GST_SECOND; }
static inline GstMessageType vcall_message_type(GstMessage *message) { return GST_MESSAGE_TYPE(message); }
static inline GstObject *vcall_message_source(GstMessage *message) { return GST_MESSAGE_SRC(message); }
static inline gboolean vcall_is_bin(GstElement *element) { return GST_IS_BIN(element); }
static inline GstBuffer *vcall_probe_info_buffer(GstPadProbeInfo *info) { return GST_PAD_PROBE_INFO_BUFFER(info); }
static inline GstEvent *vcall_probe_info_event(GstPadProbeInfo *info) { return GST_PAD_PROBE_INFO_EVENT(info); }
static inline GstBufferList *vcall_probe_info_buffer_list(GstPadProbeInfo *info) { return GST_PAD_PROBE_INFO_BUFFER_LIST(info); }
static inline GstPadProbeType vcall_probe_info_type(GstPadProbeInfo *info) { return GST_PAD_PROBE_INFO_TYPE(info); }
static inline gulong vcall_probe_info_id(GstPadProbeInfo *info) { return GST_PAD_PROBE_INFO_ID(info); }
/* The probe's buffer made writable (copied if shared) and put back in the probe's data, so that the
   change travels downstream. NULL if the probe carries no buffer. */
static inline GstBuffer *vcall_probe_info_writable_buffer(GstPadProbeInfo *info) {
  GstBuffer *buffer = GST_PAD_PROBE_INFO_BUFFER(info);
  if (buffer == NULL) return NULL;
  buffer = gst_buffer_make_writable(buffer);
  GST_PAD_PROBE_INFO_DATA(info) = buffer;
  return buffer;
}
static inline GstEventType vcall_event_type(GstEvent *event) { return GST_EVENT_TYPE(event); }
static inline GstClockTime vcall_buffer_pts(GstBuffer *buffer) { return GST_BUFFER_PTS(buffer); }
static inline GstClockTime vcall_buffer_dts(GstBuffer *buffer) { return GST_BUFFER_DTS(buffer); }
static inline GstClockTime vcall_buffer_duration(GstBuffer *buffer) { return GST_BUFFER_DURATION(buffer); }
static inline guint vcall_buffer_flags(GstBuffer *buffer) { return GST_BUFFER_FLAGS(buffer); }
static inline gboolean vcall_buffer_is_delta_unit(GstBuffer *buffer) {
  return GST_BUFFER_FLAG_IS_SET(buffer, GST_BUFFER_FLAG_DELTA_UNIT);
}
static inline GstMiniObject *vcall_mini_object(gpointer object) { return GST_MINI_OBJECT_CAST(object); }
static inline void vcall_message_unref(GstMessage *message) { gst_message_unref(message); }
static inline GstMessage *vcall_message_ref(GstMessage *message) { return gst_message_ref(message); }
static inline void vcall_event_unref(GstEvent *event) { gst_event_unref(event); }
static inline void vcall_caps_unref(GstCaps *caps) { gst_caps_unref(caps); }
static inline GstCaps *vcall_caps_ref(GstCaps *caps) { return gst_caps_ref(caps); }
static inline void vcall_query_unref(GstQuery *query) { gst_query_unref(query); }

/// A mini object's (buffer's, event's, caps') reference count, for tests that check ownership.
static inline gint vcall_mini_object_refcount(gpointer object) { return GST_MINI_OBJECT_REFCOUNT_VALUE(object); }

// MARK: RTP header fields without mapping through GstRTPBuffer from Swift
/// Reads the RTP timestamp, marker bit and payload type of a buffer holding one RTP packet. Returns FALSE if it is not RTP.
static inline gboolean vcall_rtp_buffer_header(GstBuffer *buffer, guint32 *timestamp, gboolean *marker, guint8 *payload_type) {
  GstRTPBuffer rtp = GST_RTP_BUFFER_INIT;
  if (!gst_rtp_buffer_map(buffer, GST_MAP_READ, &rtp)) return FALSE;
  *timestamp = gst_rtp_buffer_get_timestamp(&rtp);
  *marker = gst_rtp_buffer_get_marker(&rtp);
  *payload_type = gst_rtp_buffer_get_payload_type(&rtp);
  gst_rtp_buffer_unmap(&rtp);
  return TRUE;
}

#endif
