"""A relay-room member written from docs/protocol.md's "Relay rooms" section alone, on aiortc: it joins,
answers the relay's offers (never offers), sends a moving VP8 picture and an Opus tone on the m-lines the
track map names as its own, and counts the frames it decodes from each other participant, by the track
map's mid → participant entries.

    member = RelayMember("ws://127.0.0.1:8080/ws", "standup", "ada")
    await member.start()
    ...
    member.frames_from(participant_id)   # decoded video frames so far
    await member.stop()
"""

from __future__ import annotations

import asyncio
import fractions
import json
import math
from collections import defaultdict
from urllib.parse import quote

import av
import websockets
from aiortc import (MediaStreamTrack, RTCBundlePolicy, RTCConfiguration, RTCIceServer, RTCPeerConnection,
                    RTCSessionDescription, VideoStreamTrack)
from aiortc.mediastreams import MediaStreamError
from aiortc.sdp import candidate_from_sdp


class MovingPicture(VideoStreamTrack):
    """320x240 frames at 30 fps whose brightness pattern moves every frame (so VP8 has work to do)."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    async def recv(self) -> av.VideoFrame:
        pts, time_base = await self.next_timestamp()
        frame = av.VideoFrame(320, 240, "yuv420p")
        shift = (self.count * 4) % 256
        frame.planes[0].update(bytes((x + shift) & 0xFF for x in range(frame.planes[0].line_size)) * 240)
        for plane in frame.planes[1:]:
            plane.update(bytes([128]) * plane.buffer_size)
        frame.pts, frame.time_base = pts, time_base
        self.count += 1
        return frame


class Tone(MediaStreamTrack):
    """A 440 Hz tone, 20 ms frames of 48 kHz mono."""

    kind = "audio"

    def __init__(self) -> None:
        super().__init__()
        self.sample = 0
        self.start: float | None = None

    async def recv(self) -> av.AudioFrame:
        loop = asyncio.get_running_loop()
        if self.start is None:
            self.start = loop.time()
        due = self.start + self.sample / 48000
        if due > loop.time():
            await asyncio.sleep(due - loop.time())
        samples = [int(8000 * math.sin(2 * math.pi * 440 * (self.sample + i) / 48000)) for i in range(960)]
        frame = av.AudioFrame(format="s16", layout="mono", samples=960)
        frame.planes[0].update(b"".join(s.to_bytes(2, "little", signed=True) for s in samples))
        frame.sample_rate, frame.pts, frame.time_base = 48000, self.sample, fractions.Fraction(1, 48000)
        self.sample += 960
        return frame


class RelayMember:
    def __init__(self, server: str, room: str, name: str, token: str | None = None) -> None:
        query = f"?name={quote(name)}" + (f"&token={quote(token)}" if token else "")
        self.url = server + query
        self.room = room
        self.name = name
        self.id: str | None = None
        self.relay: str | None = None
        self.ice_servers: list[RTCIceServer] = []
        self.pc: RTCPeerConnection | None = None
        self.track_map: dict[str, dict] = {}
        self.video_frames: dict[str, int] = defaultdict(int)
        self.audio_frames: dict[str, int] = defaultdict(int)
        self.offers_answered = 0
        self.errors: list[dict] = []
        self.members: dict[str, str] = {}
        self._socket = None
        self._tasks: list[asyncio.Task] = []
        self._own = {"audio": Tone(), "video": MovingPicture()}

    async def start(self) -> None:
        self._socket = await websockets.connect(self.url)
        welcome = json.loads(await self._socket.recv())
        assert welcome["type"] == "welcome", welcome
        self.id = welcome["id"]
        self.ice_servers = [RTCIceServer(urls=s["urls"], username=s.get("username"), credential=s.get("credential"))
                            for s in welcome.get("iceServers", [])]
        await self._send({"type": "join-room", "roomId": self.room, "name": self.name})
        self._tasks.append(asyncio.create_task(self._read()))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        if self.pc:
            await self.pc.close()
        if self._socket:
            await self._socket.close()

    def frames_from(self, participant: str) -> int:
        return self.video_frames[participant]

    async def _send(self, message: dict) -> None:
        await self._socket.send(json.dumps(message))

    async def _read(self) -> None:
        async for text in self._socket:
            message = json.loads(text)
            kind = message["type"]
            if kind == "room-joined":
                self.relay = message.get("relay")
                self.members = {p["id"]: p["name"] for p in message["peers"]}
            elif kind == "user-joined":
                self.members[message["from"]] = message["name"]
            elif kind == "user-disconnected":
                self.members.pop(message["from"], None)
            elif kind == "relay-changed":
                self.relay = message["relay"]
                if self.relay is None and self.pc:
                    await self.pc.close()
                    self.pc = None
            elif kind == "track-map" and message["from"] == self.relay:
                self.track_map = {entry["mid"]: entry for entry in message["tracks"]}
            elif kind == "offer" and message["from"] == self.relay:
                await self._answer(message["offer"])
            elif kind == "ice-candidate" and message["from"] == self.relay and self.pc and message["candidate"]:
                fields = message["candidate"]
                candidate = candidate_from_sdp(fields["candidate"].removeprefix("candidate:"))
                candidate.sdpMid, candidate.sdpMLineIndex = fields.get("sdpMid"), fields.get("sdpMLineIndex")
                await self.pc.addIceCandidate(candidate)
            elif kind == "error":
                self.errors.append(message)

    async def _answer(self, offer: dict) -> None:
        if self.pc is None:
            # "Every offer is BUNDLEd over one transport": max-bundle (aiortc's default, balanced, leaves a second
            # video m-line on a transport of its own when the first video m-line is not the bundle's first).
            self.pc = RTCPeerConnection(RTCConfiguration(iceServers=self.ice_servers, bundlePolicy=RTCBundlePolicy.MAX_BUNDLE))
            self.pc.on("track", self._on_track)
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=offer["sdp"], type=offer["type"]))
        for transceiver in self.pc.getTransceivers():
            entry = self.track_map.get(transceiver.mid)
            # "For the member's own m-lines participant is the member's own id": send there.
            if entry and entry["participant"] == self.id and transceiver.sender.track is None:
                transceiver.sender.replaceTrack(self._own[entry["kind"]])
                transceiver.direction = "sendonly"
        answer = await self.pc.createAnswer()
        await self.pc.setLocalDescription(answer)
        # aiortc gathers before answering: its candidates are in the SDP, so end-of-candidates follows.
        await self._send({"type": "answer", "to": self.relay,
                          "answer": {"type": "answer", "sdp": self.pc.localDescription.sdp}})
        await self._send({"type": "ice-candidate", "to": self.relay, "candidate": None})
        self.offers_answered += 1

    def _on_track(self, track: MediaStreamTrack) -> None:
        transceiver = next(t for t in self.pc.getTransceivers() if t.receiver.track is track)
        self._tasks.append(asyncio.create_task(self._consume(track, transceiver)))

    async def _consume(self, track: MediaStreamTrack, transceiver) -> None:
        counts = self.video_frames if track.kind == "video" else self.audio_frames
        try:
            while True:
                await track.recv()
                # The map is the source of truth, and a reused mid may change participant: look it up per frame.
                entry = self.track_map.get(transceiver.mid)
                if entry:
                    counts[entry["participant"]] += 1
        except MediaStreamError:
            pass
