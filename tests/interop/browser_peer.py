"""A headless Chromium page holding one RTCPeerConnection with the fake camera and microphone.

The page is served by Playwright's router at http://localhost/ (a secure context, so getUserMedia works,
and no server socket to clean up). Python talks to it with `page.evaluate`; the page hands its ICE
candidates to Python through an exposed function, which puts them on `candidates`.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

from playwright.async_api import Browser, Page, Playwright, async_playwright

CHROMIUM = os.environ.get("VCALL_CHROMIUM", "/usr/bin/chromium")

CHROMIUM_ARGS = [
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--no-sandbox",
    "--disable-dev-shm-usage",
    # Host candidates carry raw IPs (10.231.0.x) instead of mDNS names libnice cannot resolve.
    "--disable-features=WebRtcHideLocalIpsWithMdns",
    "--autoplay-policy=no-user-gesture-required",
    "--disable-background-timer-throttling",
    "--disable-renderer-backgrounding",
]

PAGE_URL = "http://localhost/interop.html"

PAGE = r"""<!doctype html>
<html><head><meta charset="utf-8"><title>vcall interop</title></head>
<body>
<video id="remote" autoplay playsinline muted></video>
<script>
window.pc = null;
window.events = [];
const pending = [];
const note = (...args) => window.events.push([Math.round(performance.now()), ...args]);

window.setupPeer = async () => {
  const stream = await navigator.mediaDevices.getUserMedia({video: {width: 640, height: 480}, audio: true});
  const pc = new RTCPeerConnection({iceServers: [], bundlePolicy: 'max-bundle'});
  window.pc = pc;
  pc.onicecandidate = (e) => window.vcallCandidate(e.candidate ? e.candidate.toJSON() : null);
  pc.onconnectionstatechange = () => note('connectionState', pc.connectionState);
  pc.oniceconnectionstatechange = () => note('iceConnectionState', pc.iceConnectionState);
  const remote = new MediaStream();
  document.getElementById('remote').srcObject = remote;
  pc.ontrack = (e) => {
    note('track', e.track.kind);
    remote.addTrack(e.track);
    document.getElementById('remote').play().catch((err) => note('play-error', String(err)));
  };
  for (const track of stream.getTracks()) pc.addTrack(track, stream);
  return stream.getTracks().map((t) => t.kind + ':' + t.label);
};

window.makeOffer = async () => {
  await window.pc.setLocalDescription(await window.pc.createOffer());
  return window.pc.localDescription.sdp;
};

window.acceptAnswer = async (sdp) => {
  await window.pc.setRemoteDescription({type: 'answer', sdp});
  await flush();
};

window.acceptOffer = async (sdp) => {
  await window.pc.setRemoteDescription({type: 'offer', sdp});
  await flush();
  await window.pc.setLocalDescription(await window.pc.createAnswer());
  return window.pc.localDescription.sdp;
};

// Remote candidates wait here until the remote description is set; null means end of candidates.
async function addOne(c) {
  try {
    if (c === null) await window.pc.addIceCandidate();
    else await window.pc.addIceCandidate(c);
    note('added-candidate', c === null ? null : c.candidate);
  } catch (err) {
    note('candidate-error', c === null ? null : c.candidate, String(err));
  }
}
async function flush() { while (pending.length) await addOne(pending.shift()); }
window.addRemoteCandidate = async (c) => {
  if (!window.pc || !window.pc.remoteDescription) { pending.push(c); return; }
  await addOne(c);
};

window.mediaStats = async () => {
  const out = {connectionState: window.pc.connectionState, inbound: {}, outbound: {}, codecs: {}};
  const report = await window.pc.getStats();
  report.forEach((s) => {
    if (s.type === 'codec') out.codecs[s.id] = s.mimeType;
  });
  report.forEach((s) => {
    if (s.type === 'inbound-rtp') {
      out.inbound[s.kind] = {packetsReceived: s.packetsReceived, bytesReceived: s.bytesReceived,
        framesDecoded: s.framesDecoded, totalSamplesReceived: s.totalSamplesReceived,
        packetsLost: s.packetsLost, codec: out.codecs[s.codecId] || null};
    } else if (s.type === 'outbound-rtp') {
      out.outbound[s.kind] = {packetsSent: s.packetsSent, bytesSent: s.bytesSent,
        framesEncoded: s.framesEncoded, codec: out.codecs[s.codecId] || null};
    }
  });
  return out;
};
</script>
</body></html>
"""


class ChromiumPeer:
    """Headless Chromium with one page and one RTCPeerConnection. Use `async with`."""

    def __init__(self) -> None:
        self.candidates: asyncio.Queue = asyncio.Queue()
        self._playwright: Playwright | None = None
        self._browser: Browser | None = None
        self.page: Page | None = None

    async def __aenter__(self) -> "ChromiumPeer":
        try:
            self._playwright = await async_playwright().start()
            self._browser = await self._playwright.chromium.launch(
                executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            context = await self._browser.new_context()
            await context.grant_permissions(["camera", "microphone"], origin="http://localhost")
            await context.route(PAGE_URL, lambda route: route.fulfill(
                status=200, content_type="text/html; charset=utf-8", body=PAGE))
            self.page = await context.new_page()
            await self.page.expose_function("vcallCandidate", self.candidates.put_nowait)
            await self.page.goto(PAGE_URL)
            self.tracks = await self.page.evaluate("window.setupPeer()")
        except BaseException:
            await self.close()
            raise
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    async def close(self) -> None:
        # Bounded: a wedged browser must not hang the test's cleanup.
        if self._browser is not None:
            try:
                await asyncio.wait_for(self._browser.close(), 10)
            except (Exception, asyncio.CancelledError):
                pass
            self._browser = None
        if self._playwright is not None:
            try:
                await asyncio.wait_for(self._playwright.stop(), 10)
            except (Exception, asyncio.CancelledError):
                pass
            self._playwright = None

    async def make_offer(self) -> str:
        return await self.page.evaluate("window.makeOffer()")

    async def accept_answer(self, sdp: str) -> None:
        await self.page.evaluate("sdp => window.acceptAnswer(sdp)", sdp)

    async def accept_offer(self, sdp: str) -> str:
        return await self.page.evaluate("sdp => window.acceptOffer(sdp)", sdp)

    async def add_remote_candidate(self, candidate: dict | None) -> None:
        await self.page.evaluate("c => window.addRemoteCandidate(c)", candidate)

    async def stats(self) -> dict:
        return await self.page.evaluate("window.mediaStats()")

    async def events(self) -> list:
        return await self.page.evaluate("window.events")

    async def wait_inbound(self, timeout: float, what: str, predicate) -> tuple[dict, float]:
        """Polls getStats() every 100 ms until `predicate(stats)`; returns the stats and when it held."""
        deadline = time.monotonic() + timeout
        while True:
            stats = await self.stats()
            if predicate(stats):
                return stats, time.monotonic()
            if time.monotonic() > deadline:
                raise AssertionError(f"Chromium: timed out after {timeout:.0f} s waiting for {what}; last stats "
                                     f"{stats}; page events {await self.events()}")
            await asyncio.sleep(0.1)
