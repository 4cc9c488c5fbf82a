"""Drives `vcall-interop-peer` (a vcall WebRTCPeer on webrtcbin) over its JSON-lines stdin/stdout.

Also holds the small pieces the interop tests share: running a test coroutine under a hard time limit,
and reading the parts of an SDP the tests check (payload types per codec, direction per m-line).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Coroutine

REPO = Path(__file__).resolve().parents[2]
LOG_DIR = REPO / "test-output" / "interop"

# Every interop test is failed after this many seconds, whatever it is waiting for.
TEST_TIMEOUT = float(os.environ.get("VCALL_INTEROP_TIMEOUT", "30"))


def peer_binary() -> Path:
    env = os.environ.get("VCALL_INTEROP_PEER_BIN")
    return Path(env) if env else REPO / ".build" / "debug" / "vcall-interop-peer"


def run_bounded(factory: Callable[[], Coroutine[Any, Any, Any]], timeout: float = TEST_TIMEOUT) -> Any:
    """Runs one test's coroutine on a fresh event loop, failing it after `timeout` seconds.

    The coroutine's own `finally` blocks (which stop every process and browser it started) still run
    when the time limit cancels it.
    """

    async def bounded() -> Any:
        try:
            return await asyncio.wait_for(factory(), timeout)
        except asyncio.TimeoutError:
            raise AssertionError(f"interop test did not finish within {timeout:.0f} s") from None

    return asyncio.run(bounded())


class PeerError(AssertionError):
    pass


@dataclass
class VcallPeer:
    """One `vcall-interop-peer` process.

    Everything it prints is kept in `transcript` (time since start, message); its stderr goes to a
    file under test-output/interop/ whose tail is attached to every failure. `start()` and `close()` must be paired:
    `close()` always leaves the process dead.
    """

    role: str
    send: bool = True
    log_level: str = os.environ.get("VCALL_INTEROP_LOG_LEVEL", "debug")
    name: str = "vcall"

    transcript: list[tuple[float, dict]] = field(default_factory=list)
    candidates: asyncio.Queue = field(default_factory=asyncio.Queue)
    frames: tuple[int, int] = (0, 0)
    first_video_frame_at: float | None = None
    first_audio_frame_at: float | None = None
    tracks: list[dict] = field(default_factory=list)
    states: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.proc: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task | None = None
        self._changed = asyncio.Condition()
        self._stats: asyncio.Queue = asyncio.Queue()
        # stderr of the latest run of each peer name: <repo>/test-output/interop/<name>.log (git-ignored).
        LOG_DIR.mkdir(parents=True, exist_ok=True)
        self._stderr = open(LOG_DIR / f"{self.name}.log", "w+b")
        self.started_at = time.monotonic()

    # process lifecycle

    async def start(self) -> "VcallPeer":
        binary = peer_binary()
        if not binary.is_file() or not os.access(binary, os.X_OK):
            raise PeerError(f"vcall-interop-peer not found at {binary}: build it with "
                            "`swift build --product vcall-interop-peer` or set VCALL_INTEROP_PEER_BIN")
        args = [str(binary), "--role", self.role, "--send" if self.send else "--no-send",
                "--log-level", self.log_level]
        self.started_at = time.monotonic()
        self.proc = await asyncio.create_subprocess_exec(
            *args, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=self._stderr,
            limit=4 * 1024 * 1024)
        self._reader = asyncio.create_task(self._read(), name=f"{self.name}-stdout")
        return self

    async def close(self) -> int | None:
        """Asks the peer to quit, then kills it if it has not exited within 5 s. Returns its exit code."""
        proc = self.proc
        code = None
        if proc is not None:
            if proc.returncode is None:
                try:
                    await asyncio.wait_for(self.send_message({"type": "quit"}), 2)
                    proc.stdin.close()
                except (Exception, asyncio.CancelledError):
                    pass
                try:
                    code = await asyncio.wait_for(asyncio.shield(proc.wait()), 5)
                except (Exception, asyncio.CancelledError):
                    code = None
                if proc.returncode is None:
                    proc.kill()
                    try:
                        await asyncio.wait_for(asyncio.shield(proc.wait()), 5)
                    except (Exception, asyncio.CancelledError):
                        pass
            else:
                code = proc.returncode
        if self._reader is not None:
            self._reader.cancel()
            try:
                await self._reader
            except (Exception, asyncio.CancelledError):
                pass
        self._stderr.close()
        return code

    # stdout

    async def _read(self) -> None:
        assert self.proc and self.proc.stdout
        while True:
            line = await self.proc.stdout.readline()
            if not line:
                break
            try:
                message = json.loads(line)
            except ValueError:
                message = {"type": "unparsed", "line": line.decode(errors="replace").rstrip()}
            now = time.monotonic() - self.started_at
            self.transcript.append((now, message))
            kind = message.get("type")
            if kind == "candidate":
                self.candidates.put_nowait(message.get("candidate"))
            elif kind == "frames":
                self.frames = (int(message.get("video", 0)), int(message.get("audio", 0)))
                if self.frames[0] > 0 and self.first_video_frame_at is None:
                    self.first_video_frame_at = time.monotonic()
                if self.frames[1] > 0 and self.first_audio_frame_at is None:
                    self.first_audio_frame_at = time.monotonic()
            elif kind == "track":
                self.tracks.append(message)
            elif kind == "state":
                self.states.append(message.get("connectionState"))
            elif kind == "stats":
                self._stats.put_nowait(message.get("stats"))
            elif kind == "error":
                self.errors.append(str(message.get("message")))
            async with self._changed:
                self._changed.notify_all()
        async with self._changed:
            self._changed.notify_all()

    # stdin

    async def send_message(self, message: dict) -> None:
        assert self.proc and self.proc.stdin
        self.transcript.append((time.monotonic() - self.started_at, {"stdin": message}))
        self.proc.stdin.write((json.dumps(message) + "\n").encode())
        await self.proc.stdin.drain()

    async def send_description(self, kind: str, sdp: str) -> None:
        await self.send_message({"type": kind, "sdp": sdp})

    async def send_candidate(self, candidate: dict | None) -> None:
        await self.send_message({"type": "candidate", "candidate": candidate})

    # waiting

    async def wait_until(self, predicate: Callable[[], Any], timeout: float, what: str) -> Any:
        """Waits until `predicate()` is truthy (checked after every line the peer prints)."""
        deadline = time.monotonic() + timeout
        async with self._changed:
            while True:
                value = predicate()
                if value:
                    return value
                if self.proc is not None and self.proc.returncode is not None and self._reader and self._reader.done():
                    raise PeerError(f"{self.name} exited (code {self.proc.returncode}) while waiting for {what}\n"
                                    + self.diagnostics())
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise PeerError(f"{self.name}: timed out after {timeout:.0f} s waiting for {what}\n"
                                    + self.diagnostics())
                try:
                    await asyncio.wait_for(self._changed.wait(), min(remaining, 0.5))
                except asyncio.TimeoutError:
                    pass

    async def wait_connected(self, timeout: float = 15) -> None:
        """Waits for connectionState "connected"; fails at once on "failed" (ICE or DTLS failed)."""
        def connected() -> bool:
            if "failed" in self.states:
                raise PeerError(f"{self.name}: connectionState went to failed (states so far {self.states})\n"
                                + self.diagnostics())
            return "connected" in self.states
        await self.wait_until(connected, timeout, "connectionState connected")

    async def wait_description(self, kind: str, timeout: float = 10) -> str:
        message = await self.wait_until(
            lambda: next((m for _, m in self.transcript if m.get("type") == kind), None), timeout, f"its {kind}")
        return message["sdp"]

    async def wait_frames(self, video: int, audio: int, timeout: float, what: str) -> tuple[int, int]:
        return await self.wait_until(
            lambda: self.frames if self.frames[0] >= video and self.frames[1] >= audio else None, timeout, what)

    async def stats(self, timeout: float = 5) -> dict:
        while not self._stats.empty():
            self._stats.get_nowait()
        await self.send_message({"type": "stats"})
        try:
            return await asyncio.wait_for(self._stats.get(), timeout)
        except asyncio.TimeoutError:
            raise PeerError(f"{self.name}: no stats reply within {timeout:.0f} s\n" + self.diagnostics()) from None

    # reporting

    def stderr_tail(self, lines: int = 40) -> str:
        try:
            self._stderr.flush()
            text = Path(self._stderr.name).read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def transcript_text(self, limit: int = 60) -> str:
        out = []
        for t, message in self.transcript:
            if message.get("type") == "frames" and out and '"frames"' in out[-1]:
                out[-1] = f"{t:7.2f} {json.dumps(message)}"
                continue
            text = json.dumps(message)
            out.append(f"{t:7.2f} {text[:300]}{'…' if len(text) > 300 else ''}")
        return "\n".join(out[-limit:])

    def diagnostics(self) -> str:
        return (f"--- {self.name} transcript (stdout, and stdin as {{'stdin': …}}) ---\n{self.transcript_text()}\n"
                f"--- {self.name} stderr tail ({self._stderr.name}) ---\n{self.stderr_tail()}")


async def relay(source: asyncio.Queue, sink: Callable[[Any], Coroutine[Any, Any, Any]]) -> None:
    """Forwards every item of `source` to `sink`, in order, until cancelled."""
    while True:
        item = await source.get()
        await sink(item)


async def cancel_all(*tasks: asyncio.Task | None) -> None:
    for task in tasks:
        if task is not None:
            task.cancel()
    for task in tasks:
        if task is not None:
            try:
                await task
            except (Exception, asyncio.CancelledError):
                pass


# SDP


@dataclass
class MediaSection:
    kind: str
    mid: str | None
    direction: str | None
    payload_types: dict[str, list[int]]  # upper-case encoding name -> payload types, in m-line order
    port: int


def media_sections(sdp: str) -> list[MediaSection]:
    sections: list[MediaSection] = []
    current: MediaSection | None = None
    for raw in sdp.splitlines():
        line = raw.strip()
        if line.startswith("m="):
            kind, port = line[2:].split()[:2]
            current = MediaSection(kind=kind, mid=None, direction=None, payload_types={}, port=int(port))
            sections.append(current)
        elif current is None:
            continue
        elif line.startswith("a=mid:"):
            current.mid = line[len("a=mid:"):]
        elif line in ("a=sendrecv", "a=sendonly", "a=recvonly", "a=inactive"):
            current.direction = line[2:]
        else:
            match = re.match(r"a=rtpmap:(\d+) ([^/]+)/", line)
            if match:
                current.payload_types.setdefault(match.group(2).upper(), []).append(int(match.group(1)))
    return sections


def section_of(sdp: str, kind: str) -> MediaSection:
    found = [s for s in media_sections(sdp) if s.kind == kind]
    assert len(found) == 1, f"expected one {kind} m-line, found {len(found)} in:\n{sdp}"
    return found[0]


def check_answer_keeps_offer(offer: str, answer: str, answerer: str) -> dict[str, int]:
    """Asserts the answer has `a=sendrecv` on its video and audio m-lines and uses, for VP8 and Opus,
    payload types the offer gave them. Returns the payload types the answer uses."""
    used = {}
    for kind, codec in (("video", "VP8"), ("audio", "OPUS")):
        offered = section_of(offer, kind)
        answered = section_of(answer, kind)
        assert answered.port != 0, f"{answerer} rejected the {kind} m-line (port 0):\n{answer}"
        assert answered.direction == "sendrecv", (
            f"{answerer}'s answer has a={answered.direction} on the {kind} m-line, expected a=sendrecv "
            f"(its own {codec} would not be sent):\n{answer}")
        assert codec in offered.payload_types, f"the offer has no {codec} on its {kind} m-line:\n{offer}"
        assert codec in answered.payload_types, f"{answerer}'s answer has no {codec} on its {kind} m-line:\n{answer}"
        wrong = set(answered.payload_types[codec]) - set(offered.payload_types[codec])
        assert not wrong, (f"{answerer}'s answer maps {codec} to payload type(s) {sorted(wrong)}, but the offer "
                           f"gave {codec} {offered.payload_types[codec]}:\n--- offer ---\n{offer}\n--- answer ---\n{answer}")
        used[codec] = answered.payload_types[codec][0]
    return used
