"""Shared steps for the browser tests: joining rooms and checking that video really plays."""

from __future__ import annotations

import secrets
import time
from urllib.parse import urlencode

from playwright.sync_api import Page


def new_room_id() -> str:
    return secrets.token_urlsafe(12)


def register(page: Page, prefix: str = "u") -> str:
    """Registers a new account through the home page (which logs the page's context in); returns its username."""
    username = prefix + secrets.token_hex(5)
    page.goto("/")
    page.fill("#username", username)
    page.fill("#password", "pw-" + secrets.token_hex(8))
    page.click("#register")
    page.wait_for_selector("#signed-in:not([hidden])")
    return username


def room_path(room_id: str, name: str, **query) -> str:
    return f"/r/{room_id}?" + urlencode({"name": name, **{k: str(v) for k, v in query.items()}})


def join(page: Page, room_id: str, name: str, **query) -> None:
    page.goto(room_path(room_id, name, **query))
    page.wait_for_function("() => window.vcall && window.vcall.phase === 'joined'", timeout=20_000)


def wait_connected(page: Page, count: int, timeout: float = 30_000) -> list[str]:
    """Wait until the page has `count` remote peers, all in connectionState 'connected'; return their ids."""
    page.wait_for_function(
        """(n) => {
            const peers = Object.values(window.vcall.peers());
            return peers.length === n && peers.every((p) => p.connectionState === 'connected');
        }""",
        arg=count,
        timeout=timeout,
    )
    return page.evaluate("() => window.vcall.peerIds()")


def peer_id_by_name(page: Page, name: str) -> str:
    peers = page.evaluate("() => window.vcall.peers()")
    for pid, p in peers.items():
        if p["name"] == name:
            return pid
    raise AssertionError(f"no peer named {name!r} on this page: {peers}")


def video_element_size(page: Page, peer_id: str) -> tuple[int, int]:
    return tuple(
        page.evaluate(
            """(id) => {
                const v = document.querySelector(`.tile.remote[data-peer-id="${id}"] video`);
                return v ? [v.videoWidth, v.videoHeight] : [0, 0];
            }""",
            peer_id,
        )
    )


def inbound_video(page: Page, peer_id: str) -> dict:
    stats = page.evaluate("(id) => window.vcall.inboundVideo(id)", peer_id)
    return stats or {"framesDecoded": 0, "frameWidth": 0, "frameHeight": 0, "bytesReceived": 0}


# Counts the frames the tile's <video> element presents (requestVideoFrameCallback) during `ms`:
# frames a page really shows, where decoder statistics only say that frames were decoded.
PRESENTED_FRAMES_JS = """async ([id, ms]) => {
    const v = document.querySelector(`.tile.remote[data-peer-id="${id}"] video`);
    if (!v) return 0;
    let presented = 0;
    let watching = true;
    const onFrame = () => { if (!watching) return; presented += 1; v.requestVideoFrameCallback(onFrame); };
    v.requestVideoFrameCallback(onFrame);
    await new Promise((resolve) => setTimeout(resolve, ms));
    watching = false;
    return presented;
}"""


def assert_video_playing(page: Page, peer_id: str, timeout: float = 20.0) -> dict:
    """The remote video from `peer_id` plays: within one second its element has a size and presents
    frames (at least 3: a paused element may still present the one frame it had pending), and the
    decoded-frame count rises."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        first = inbound_video(page, peer_id)
        presented = page.evaluate(PRESENTED_FRAMES_JS, [peer_id, 1000])
        second = inbound_video(page, peer_id)
        width, height = video_element_size(page, peer_id)
        last = (width, height, presented, first, second)
        if width > 0 and height > 0 and presented >= 3 and second["framesDecoded"] > first["framesDecoded"] > 0:
            return second
    diagnostics = page.evaluate("(id) => window.vcall.mediaDiagnostics(id)", peer_id)
    raise AssertionError(
        f"video from {peer_id} is not playing: videoWidth/Height, frames presented in 1 s, "
        f"decoder stats before/after = {last}; where it stops: {diagnostics}"
    )


def all_videos_playing(page: Page, expected_peers: int) -> None:
    ids = wait_connected(page, expected_peers)
    for pid in ids:
        assert_video_playing(page, pid)


def wait_tile_attr(page: Page, peer_id: str, attr: str, value: str, timeout: float = 10_000) -> None:
    page.wait_for_selector(f'.tile.remote[data-peer-id="{peer_id}"][data-{attr}="{value}"]', timeout=timeout)


def call_each_other(alice: Page, bob: Page, room_id: str, timeout: float = 30_000) -> tuple[str, str]:
    """alice and bob join `room_id`, connect, and each plays the other's video; returns (bob's id on alice's
    page, alice's id on bob's page)."""
    join(alice, room_id, "alice")
    join(bob, room_id, "bob")
    wait_connected(alice, 1, timeout=timeout)
    wait_connected(bob, 1, timeout=timeout)
    bob_id = peer_id_by_name(alice, "bob")
    alice_id = peer_id_by_name(bob, "alice")
    for page, pid in ((alice, bob_id), (bob, alice_id)):
        assert_video_playing(page, pid)
    return bob_id, alice_id
