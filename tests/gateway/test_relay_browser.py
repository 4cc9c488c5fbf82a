"""Chromium pages in relay rooms: vcall-server, a `vcall-gateway --relay` with an API token, and pages with
fake devices. Each page keeps one RTCPeerConnection (to the relay), sends its camera once, and decodes
and plays every other participant; newcomers see everyone at once; when the relay dies the pages call
each other in a mesh, and when a relay joins a mesh call they move to it. Timings are printed.
"""

from __future__ import annotations

import subprocess
import time

import pytest

from app_harness import Server, Users, server_binary
from app_helpers import (assert_video_playing, inbound_video, join, new_room_id, peer_id_by_name, wait_connected,
                         wait_tile_attr)
from gateway_harness import Gateway


@pytest.fixture
def relay_room(browser):
    """A server, a way to start the room's relay (with a token of that server), and the users' pages."""
    server = Server()
    users = Users(browser, server)
    room = new_room_id()
    token = subprocess.run([str(server_binary()), "token", "create", "relay", "--data-dir", str(server.data_dir)],
                           capture_output=True, text=True, check=True).stdout.split()[-1]
    relays: list[Gateway] = []

    def start_relay(label: str = "relay") -> Gateway:
        relay = Gateway(label, room, "--relay", "--video", "none", "--audio", "none", "--token", token,
                        server=f"ws://127.0.0.1:{server.port}/ws")
        relay.wait_for_log("joining room")
        relays.append(relay)
        return relay

    yield room, start_relay, users
    users.close()
    for relay in relays:
        relay.stop()
    server.stop()


def wait_relayed(page, participants: int, timeout: float = 30_000) -> None:
    """The page has a relay, one RTCPeerConnection (to it, connected) and `participants` tiles."""
    page.wait_for_function(
        """(n) => {
            const v = window.vcall;
            const connections = v.connections();
            return v.relay && connections.length === 1 && connections[0].relay
                && connections[0].connectionState === 'connected' && v.peerIds().length === n;
        }""", arg=participants, timeout=timeout)


# In a newcomer's page: waits for its relay connection to be connected, then for a decoded frame from each
# named participant; returns the seconds from connected to each one's first frame.
FIRST_FRAMES_JS = """async (names) => {
    const v = window.vcall;
    const now = () => performance.now() / 1000;
    const deadline = now() + 30;
    while (!(v.relayConnection() && v.relayConnection().connectionState === 'connected') && now() < deadline) {
        await new Promise((r) => setTimeout(r, 5));
    }
    const connected = now();
    const result = {};
    while (Object.keys(result).length < names.length && now() < connected + 10) {
        const peers = v.peers();
        for (const [id, p] of Object.entries(peers)) {
            if (!names.includes(p.name) || p.name in result) continue;
            const stats = await v.inboundVideo(id);
            if (stats && stats.framesDecoded > 0) result[p.name] = now() - connected;
        }
        await new Promise((r) => setTimeout(r, 10));
    }
    return result;
}"""


def relayed_pages(users, room: str, names: list[str]) -> dict:
    """A page per name joins `room`; returns them once each is connected to the relay with a tile per other."""
    pages = {name: users.new(name) for name in names}
    for name, page in pages.items():
        join(page, room, name)
    for page in pages.values():
        wait_relayed(page, len(names) - 1)
    return pages


def assert_hears(page, peer: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    first = page.evaluate("(id) => window.vcall.inboundAudio(id)", peer)
    while time.monotonic() < deadline:
        time.sleep(1)
        now = page.evaluate("(id) => window.vcall.inboundAudio(id)", peer)
        if first and now and now["playing"] and now["packetsReceived"] > first["packetsReceived"]:
            return
        first = now
    raise AssertionError(f"audio from {peer} does not play: {first}")


def test_three_pages_each_send_once_to_the_relay_and_play_the_two_others(relay_room):
    room, start_relay, users = relay_room
    start_relay()
    names = ["ada", "bob", "cy"]
    pages = relayed_pages(users, room, names)
    for name, page in pages.items():
        connection = page.evaluate("() => window.vcall.relayConnection()")
        assert connection["senders"] == 2 and connection["sending"]["video"], connection   # one camera, one microphone
        for other in names:
            if other == name:
                continue
            peer = peer_id_by_name(page, other)   # the tile carries the participant's name
            assert_video_playing(page, peer)
            assert_hears(page, peer)
        assert len(page.evaluate("() => window.vcall.localMedia()")["senders"]) == 1

    # Screen sharing swaps the track on the one sender: nobody renegotiates, the others see the screen.
    ada = pages["ada"]
    offers = ada.evaluate("() => window.vcall.relayConnection().offersReceived")
    widths = {name: inbound_video(pages[name], peer_id_by_name(pages[name], "ada"))["frameWidth"] for name in ("bob", "cy")}
    ada.click("#toggle-screen")
    for name in ("bob", "cy"):
        page = pages[name]
        peer = peer_id_by_name(page, "ada")
        wait_tile_attr(page, peer, "screen", "true")
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and inbound_video(page, peer)["frameWidth"] == widths[name]:
            time.sleep(0.5)
        assert inbound_video(page, peer)["frameWidth"] != widths[name], f"{name} never got ada's screen"
        assert_video_playing(page, peer)
    assert ada.evaluate("() => window.vcall.relayConnection().offersReceived") == offers


def test_a_newcomer_sees_everyone_at_once_and_the_others_carry_on_when_it_leaves(relay_room):
    room, start_relay, users = relay_room
    start_relay()
    names = ["ada", "bob", "cy"]
    pages = relayed_pages(users, room, names)
    dan = users.new("dan")
    join(dan, room, "dan")
    # Timed inside the page (no round trips to the test): from its relay connection's `connected` to each
    # participant's first decoded frame.
    first_frames = dan.evaluate(FIRST_FRAMES_JS, names)
    print("newcomer's first frame of each participant after connecting (s):", first_frames)
    # Goal: within a second. Bounded at 1.5 s: a publisher asked for a keyframe less than a second before
    # (by another subscriber's PLI) waits out its throttle, which can reach the second. Without asking at
    # once the wait would be Chromium's periodic keyframe, many seconds.
    assert len(first_frames) == 3 and max(first_frames.values()) <= 1.5, first_frames
    for page in pages.values():
        wait_relayed(page, 3)
    dan.close()
    before = {(name, other): inbound_video(page, peer_id_by_name(page, other))["framesDecoded"]
              for name, page in pages.items() for other in names if other != name}
    for page in pages.values():
        wait_relayed(page, 2)
    time.sleep(2)
    for name, page in pages.items():
        for other in names:
            if other != name:
                after = inbound_video(page, peer_id_by_name(page, other))["framesDecoded"]
                assert after > before[name, other] + 20, (name, other, before[name, other], after)


def test_the_pages_fall_back_to_a_mesh_when_the_relay_dies_and_move_to_a_relay_that_joins(relay_room):
    room, start_relay, users = relay_room
    relay = start_relay()
    pages = relayed_pages(users, room, ["ada", "bob"])
    relay.kill()
    killed = time.monotonic()
    # A mesh: each page connects to the other directly and plays it again.
    gaps = {}
    for name, page in pages.items():
        other = "bob" if name == "ada" else "ada"
        page.wait_for_function("() => window.vcall.relay === null", timeout=10_000)
        wait_connected(page, 1)
        peer = peer_id_by_name(page, other)
        start = inbound_video(page, peer)["framesDecoded"]
        while inbound_video(page, peer)["framesDecoded"] <= start and time.monotonic() - killed < 20:
            time.sleep(0.05)
        gaps[name] = time.monotonic() - killed
        assert_video_playing(page, peer)
        connections = page.evaluate("() => window.vcall.connections()")
        assert len(connections) == 1 and not connections[0]["relay"], connections
    print("from kill -9 of the relay to decoding the other page again in a mesh (s):", gaps)
    assert max(gaps.values()) < 5, gaps

    # A relay joins the mesh call: the pages move to it.
    start_relay("second-relay")
    for name, page in pages.items():
        wait_relayed(page, 1)
        assert_video_playing(page, peer_id_by_name(page, "bob" if name == "ada" else "ada"))


def test_a_gateway_member_falls_back_to_a_mesh_with_the_pages_when_the_relay_dies(relay_room, tmp_path):
    room, start_relay, users = relay_room
    relay = start_relay()
    server = relay.process.args[relay.process.args.index("--server") + 1]
    bot = Gateway("member-bot", room, "--size", "640x360", server=server)
    try:
        bot.wait_for_log("has a relay")
        page = users.new("ada")
        join(page, room, "ada")
        wait_relayed(page, 1)
        assert_video_playing(page, peer_id_by_name(page, "member-bot"))
        relay.kill()
        # The page and the gateway call each other directly: the page plays the gateway's test pattern.
        page.wait_for_function("() => window.vcall.relay === null", timeout=10_000)
        wait_connected(page, 1)
        assert_video_playing(page, peer_id_by_name(page, "member-bot"))
        bot.wait_for_log("calling everyone directly")
    finally:
        bot.stop()
