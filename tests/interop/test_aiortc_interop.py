"""vcall's WebRTCPeer (webrtcbin) and aiortc call each other, both sending real media.

aiortc sends a generated moving VP8 picture and an Opus tone; vcall sends its VP8 test pattern and Opus
tone. Each test counts the frames aiortc decodes from vcall (recv() on its remote tracks) and checks
the vcall peer's decoded-frame counts rise. aiortc's video is restricted to VP8 (it would otherwise
prefer nothing vcall asked for, e.g. H264). aiortc does not trickle: its candidates are in its SDP, and
vcall gets an end-of-candidates right after the description. vcall's trickled candidates are held by
this harness until aiortc has the remote description, then added with `addIceCandidate`.
"""

from __future__ import annotations

import array
import asyncio
import fractions
import json
import math
import time

import av
from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCPeerConnection,
    RTCRtpSender,
    RTCSessionDescription,
    VideoStreamTrack,
)
from aiortc.mediastreams import MediaStreamError
from aiortc.sdp import candidate_from_sdp

from peer_process import VcallPeer, cancel_all, check_answer_keeps_offer, run_bounded, section_of

SAMPLE_GAP = 2.0  # seconds between the two samples that must show frames rising


class MovingBarsTrack(VideoStreamTrack):
    """320x240 yuv420p frames at aiortc's 30 fps clock: a horizontal gradient that scrolls each frame."""

    WIDTH, HEIGHT = 320, 240

    def __init__(self) -> None:
        super().__init__()
        self.count = 0
        row = bytes(x & 0xFF for x in range(self.WIDTH * 2))
        self._rows = row  # sliced per frame to scroll

    async def recv(self) -> av.VideoFrame:
        pts, time_base = await self.next_timestamp()
        frame = av.VideoFrame(self.WIDTH, self.HEIGHT, "yuv420p")
        shift = (self.count * 4) % self.WIDTH
        luma = self._rows[shift:shift + frame.planes[0].line_size]
        frame.planes[0].update(luma * self.HEIGHT)
        for index, value in ((1, 90 + self.count % 60), (2, 160)):
            plane = frame.planes[index]
            plane.update(bytes([value & 0xFF]) * plane.buffer_size)
        frame.pts, frame.time_base = pts, time_base
        self.count += 1
        return frame


class ToneTrack(MediaStreamTrack):
    """A 440 Hz sine, 48 kHz mono s16, in 20 ms frames paced in real time."""

    kind = "audio"
    RATE, SAMPLES = 48000, 960

    def __init__(self) -> None:
        super().__init__()
        self._start: float | None = None
        self._timestamp = 0
        period = [int(8000 * math.sin(2 * math.pi * 440 * i / self.RATE)) for i in range(self.RATE // 40)]
        self._wave = array.array("h", period * 2).tobytes()  # 1/40 s of 440 Hz is 11 whole periods

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.time()
        else:
            self._timestamp += self.SAMPLES
            await asyncio.sleep(max(0, self._start + self._timestamp / self.RATE - time.time()))
        frame = av.AudioFrame(format="s16", layout="mono", samples=self.SAMPLES)
        offset = (self._timestamp % (self.RATE // 40)) * 2
        frame.planes[0].update(self._wave[offset:offset + self.SAMPLES * 2])
        frame.pts = self._timestamp
        frame.sample_rate = self.RATE
        frame.time_base = fractions.Fraction(1, self.RATE)
        return frame


class AiortcSide:
    """One aiortc RTCPeerConnection sending MovingBarsTrack + ToneTrack and counting what it receives."""

    def __init__(self) -> None:
        # No STUN: the default (a public server) is unreachable in the test namespace.
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.received = {"video": 0, "audio": 0}
        self.first_at: dict[str, float] = {}
        self.remote_kinds: list[str] = []
        self.consumers: list[asyncio.Task] = []
        self.pending_candidates: list[dict | None] = []
        self.remote_set = False
        self.video, self.audio = MovingBarsTrack(), ToneTrack()

        @self.pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            self.remote_kinds.append(track.kind)
            self.consumers.append(asyncio.create_task(self._consume(track)))

    async def _consume(self, track: MediaStreamTrack) -> None:
        while True:
            try:
                await track.recv()
            except MediaStreamError:
                return
            self.received[track.kind] += 1
            self.first_at.setdefault(track.kind, time.monotonic())

    def add_media(self) -> None:
        """Adds the two sending tracks (reusing transceivers a remote offer created) and limits video to VP8."""
        self.pc.addTrack(self.video)
        self.pc.addTrack(self.audio)
        vp8 = [c for c in RTCRtpSender.getCapabilities("video").codecs
               if c.mimeType.lower() in ("video/vp8", "video/rtx")]
        for transceiver in self.pc.getTransceivers():
            if transceiver.kind == "video":
                transceiver.setCodecPreferences(vp8)

    async def remote_description_set(self) -> None:
        self.remote_set = True
        while self.pending_candidates:
            await self._add(self.pending_candidates.pop(0))

    async def add_remote_candidate(self, candidate: dict | None) -> None:
        if not self.remote_set:
            self.pending_candidates.append(candidate)
        else:
            await self._add(candidate)

    async def _add(self, candidate: dict | None) -> None:
        if candidate is None:
            await self.pc.addIceCandidate(None)
            return
        text = candidate["candidate"]
        parsed = candidate_from_sdp(text.split(":", 1)[1] if text.startswith("candidate:") else text)
        parsed.sdpMid = candidate.get("sdpMid")
        parsed.sdpMLineIndex = candidate.get("sdpMLineIndex")
        await self.pc.addIceCandidate(parsed)

    async def close(self) -> None:
        try:
            await asyncio.wait_for(self.pc.close(), 10)
        except (Exception, asyncio.CancelledError):
            pass
        await cancel_all(*self.consumers)


async def relay_candidates(vcall: VcallPeer, side: AiortcSide) -> None:
    while True:
        await side.add_remote_candidate(await vcall.candidates.get())


async def check_both_directions(side: AiortcSide, vcall: VcallPeer, negotiated_at: float, label: str) -> None:
    await vcall.wait_connected(15)
    await vcall.wait_until(lambda: side.received["video"] > 0 and side.received["audio"] > 0, 15,
                           f"aiortc to decode vcall's video and audio (so far {side.received}, "
                           f"aiortc connectionState {side.pc.connectionState})")
    await vcall.wait_frames(1, 1, 15, "its first decoded video and audio frames")

    aiortc_first, vcall_first = dict(side.received), vcall.frames
    await asyncio.sleep(SAMPLE_GAP)
    aiortc_second, vcall_second = dict(side.received), vcall.frames
    vcall_stats = await vcall.stats()

    assert sorted(side.remote_kinds) == ["audio", "video"], f"aiortc's remote tracks: {side.remote_kinds}"
    assert aiortc_second["video"] - aiortc_first["video"] >= 10, (
        f"aiortc decodes vcall's video too slowly or not at all: {aiortc_first} -> {aiortc_second}")
    assert aiortc_second["audio"] > aiortc_first["audio"], f"aiortc stopped receiving vcall's audio: {aiortc_first} -> {aiortc_second}"

    kinds = {t["kind"]: t["codec"] for t in vcall.tracks}
    assert kinds == {"video": "VP8", "audio": "OPUS"}, f"vcall's remote tracks: {vcall.tracks}"
    assert vcall_second[0] - vcall_first[0] >= 10, f"vcall decodes aiortc's video too slowly or not at all: {vcall_first} -> {vcall_second}"
    assert vcall_second[1] > vcall_first[1], f"vcall stopped decoding aiortc's audio: {vcall_first} -> {vcall_second}"
    assert vcall.errors == [], f"vcall reported errors: {vcall.errors}"

    print(f"\n[{label}] time to first frame: aiortc (vcall's video) {side.first_at['video'] - negotiated_at:.2f} s, "
          f"(audio) {side.first_at['audio'] - negotiated_at:.2f} s; vcall (aiortc's video) "
          f"{vcall.first_video_frame_at - negotiated_at:.2f} s, (audio) {vcall.first_audio_frame_at - negotiated_at:.2f} s")
    print(f"[{label}] aiortc received vcall video frames {aiortc_first['video']} -> {aiortc_second['video']}, "
          f"audio frames {aiortc_first['audio']} -> {aiortc_second['audio']} in {SAMPLE_GAP:.0f} s")
    print(f"[{label}] vcall decoded aiortc video frames {vcall_first[0]} -> {vcall_second[0]}, "
          f"audio frames {vcall_first[1]} -> {vcall_second[1]} in {SAMPLE_GAP:.0f} s")
    print(f"[{label}] vcall stats {json.dumps(vcall_stats)}")


def test_vcall_offers_aiortc_answers_both_directions_decode() -> None:
    async def scenario() -> None:
        vcall = VcallPeer(role="offer", name="vcall-offerer")
        side = AiortcSide()
        relays: list[asyncio.Task] = []
        try:
            await vcall.start()
            relays.append(asyncio.create_task(relay_candidates(vcall, side)))
            offer = await vcall.wait_description("offer")
            await side.pc.setRemoteDescription(RTCSessionDescription(sdp=offer, type="offer"))
            await side.remote_description_set()
            side.add_media()
            await side.pc.setLocalDescription(await side.pc.createAnswer())
            answer = side.pc.localDescription.sdp
            await vcall.send_description("answer", answer)
            await vcall.send_candidate(None)
            negotiated_at = time.monotonic()
            payload_types = check_answer_keeps_offer(offer, answer, "aiortc")
            for kind in ("video", "audio"):
                assert section_of(offer, kind).direction == "sendrecv", f"vcall's offer:\n{offer}"
            print(f"\n[aiortc answers] aiortc's answer keeps vcall's payload types {payload_types}, a=sendrecv on both")
            try:
                await check_both_directions(side, vcall, negotiated_at, "aiortc answers")
            except AssertionError as failure:
                raise AssertionError(f"{failure}\n--- aiortc's answer ---\n{answer}\n" + vcall.diagnostics()) from None
        finally:
            await cancel_all(*relays)
            await side.close()
            await vcall.close()

    run_bounded(scenario)


def test_aiortc_offers_vcall_answers_both_directions_decode() -> None:
    async def scenario() -> None:
        vcall = VcallPeer(role="answer", name="vcall-answerer")
        side = AiortcSide()
        relays: list[asyncio.Task] = []
        try:
            await vcall.start()
            relays.append(asyncio.create_task(relay_candidates(vcall, side)))
            side.add_media()
            await side.pc.setLocalDescription(await side.pc.createOffer())
            offer = side.pc.localDescription.sdp
            assert "VP8" in section_of(offer, "video").payload_types and "H264" not in offer, (
                f"aiortc's offer should carry VP8 only:\n{offer}")
            await vcall.send_description("offer", offer)
            await vcall.send_candidate(None)
            answer = await vcall.wait_description("answer")
            payload_types = check_answer_keeps_offer(offer, answer, "vcall")
            await side.pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
            await side.remote_description_set()
            negotiated_at = time.monotonic()
            print(f"\n[aiortc offers] vcall's answer keeps aiortc's payload types {payload_types}, a=sendrecv on both")
            try:
                await check_both_directions(side, vcall, negotiated_at, "aiortc offers")
            except AssertionError as failure:
                raise AssertionError(f"{failure}\n--- aiortc's offer ---\n{offer}\n--- vcall's answer ---\n{answer}\n"
                                     + vcall.diagnostics()) from None
        finally:
            await cancel_all(*relays)
            await side.close()
            await vcall.close()

    run_bounded(scenario)
