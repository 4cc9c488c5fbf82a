"""vcall-gateway --relay: the room's hub. Members keep one peer connection, to the relay, and receive
everyone else's media from it, forwarded without decoding; the relay records as in mesh rooms; only an
API token holder may be the relay, and only one per room.

The members here are aiortc clients written from docs/protocol.md's "Relay rooms" section alone
(relay_member.py), so the document, not the web app, is what the relay is checked against.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import time


from app_harness import free_port, server_binary
from app_helpers import new_room_id
from gateway_harness import ffprobe, gateway_binary, recordings, video_packets
from relay_member import RelayMember


async def rising(members: list[RelayMember], timeout: float) -> dict[str, dict[str, tuple[int, int]]]:
    """Waits until every member decodes video and audio from every other member, twice in a row with
    more frames each time; returns each member's (video, audio) frame counts per sender."""
    deadline = time.monotonic() + timeout
    previous: dict | None = None
    while time.monotonic() < deadline:
        snapshot = {m.id: {o.id: (m.video_frames[o.id], m.audio_frames[o.id]) for o in members if o is not m}
                    for m in members}
        if previous and all(now[0] > previous[m][o][0] and now[1] > previous[m][o][1]
                            for m, others in snapshot.items() for o, now in others.items()):
            return snapshot
        previous = snapshot
        await asyncio.sleep(1.5)
    raise AssertionError(f"not every member decodes every other one: {previous}")


def test_aiortc_members_written_from_the_protocol_get_each_others_media_and_the_relay_records(gateways, tmp_path):
    room = new_room_id()
    record = tmp_path / "rec"
    relay = gateways("relay", room, "--relay", "--record", str(record), "--video", "none", "--audio", "none",
                     port=free_port())
    relay.wait_for_log("joining room")

    async def call() -> tuple[dict, float]:
        members = [RelayMember(relay.websocket(), room, name) for name in ("ada", "bob", "cy")]
        try:
            for member in members:
                await member.start()
            counts = await rising(members, timeout=60)
            started = time.monotonic()
            await asyncio.sleep(5)
            for member in members:
                # One connection, to the relay; every offer came from it and was answered.
                assert member.relay and member.relay not in {m.id for m in members}
                assert member.offers_answered >= 1 and not member.errors, member.errors
                own = [e for e in member.track_map.values() if e["participant"] == member.id]
                assert sorted(e["kind"] for e in own) == ["audio", "video"], member.track_map
            return counts, time.monotonic() - started
        finally:
            for member in members:
                await member.stop()

    counts, _ = asyncio.run(call())
    print("frames decoded (video, audio) per member, per sender:", json.dumps(counts))

    # The relay records each member as in a mesh room: VP8 and Opus, from a keyframe.
    deadline = time.monotonic() + 30
    while relay.log_text(full=True).count("finalized ") < 3 and time.monotonic() < deadline:
        time.sleep(0.5)
    files = recordings(record)
    assert len(files) == 3, [f.name for f in files]
    for path in files:
        info = ffprobe(path)
        assert sorted(s["codec_name"] for s in info["streams"]) == ["opus", "vp8"], path.name
        packets = video_packets(path)
        assert packets and packets[0][1], f"{path.name}: the first video frame is not a keyframe"
        report = json.loads(path.with_suffix(".json").read_text())
        assert report["finalizedCleanly"] is True, report
        # The file lasts as long as its video: no gap at the start or the end.
        duration = float(info["format"]["duration"])
        assert abs(duration - (packets[-1][0] - packets[0][0])) <= 0.5, (path.name, duration, packets[0], packets[-1])


def test_only_a_token_holder_is_the_relay_and_only_one_per_room(gateways):
    # A room id may start with "-" (one web-app id in 64 does): `--room -…` below must still name the room.
    room = "-" + new_room_id()[1:]
    # The in-process server trusts its own gateway: the relay of its room.
    first = gateways("first-relay", room, "--relay", "--video", "none", "--audio", "none", port=free_port())
    first.wait_for_log("joining room")
    time.sleep(1)

    def relay_with(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(gateway_binary()), "--room", room, "--relay", "--server", first.websocket(),
                               "--video", "none", "--audio", "none", *args],
                              capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)

    # No token: refused before connecting.
    missing = relay_with()
    assert missing.returncode != 0 and "--relay with --server needs --token" in missing.stderr, missing.stderr
    # A token the server does not know: a guest to it, refused the role, and the gateway exits.
    guest = relay_with("--token", "vct_not-a-token-of-this-server")
    assert guest.returncode == 1 and "cannot be the relay of room" in guest.stdout and "API token" in guest.stdout, \
        guest.stdout + guest.stderr
    # A real token, but the room has its relay.
    token = subprocess.run([str(server_binary()), "token", "create", "second-relay", "--data-dir", str(first.work / "data")],
                           capture_output=True, text=True, check=True).stdout.split()[-1]
    taken = relay_with("--token", token)
    assert taken.returncode == 1 and "cannot be the relay of room" in taken.stdout and "already has a relay" in taken.stdout, \
        taken.stdout + taken.stderr


def test_a_gateway_member_of_a_relay_room_sends_through_the_relay_and_records_the_others(gateways, tmp_path):
    """A gateway that is not the relay follows the room's relay: it answers the relay's offers, sends its
    test pattern and tone once, and records the other members from the relay's track map."""
    room = new_room_id()
    record = tmp_path / "rec"
    relay = gateways("relay", room, "--relay", "--video", "none", "--audio", "none", port=free_port())
    relay.wait_for_log("joining room")
    bot = gateways("bot", room, "--size", "640x360", "--record", str(record), server=relay.websocket())
    bot.wait_for_log("has a relay")

    async def call() -> dict:
        ada = RelayMember(relay.websocket(), room, "ada")
        try:
            await ada.start()
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                bot_id = next((i for i, n in ada.members.items() if n == "bot"), None)
                if bot_id and ada.video_frames[bot_id] > 30 and ada.audio_frames[bot_id] > 30:
                    break
                await asyncio.sleep(0.5)
            assert bot_id and ada.video_frames[bot_id] > 30, (ada.members, dict(ada.video_frames))
            await asyncio.sleep(4)
            return {"video": ada.video_frames[bot_id], "audio": ada.audio_frames[bot_id]}
        finally:
            await ada.stop()

    received = asyncio.run(call())
    print("ada decoded from the gateway member through the relay:", received)
    bot.wait_for_log("finalized ", timeout=30)
    [path] = recordings(record)
    assert "-ada-" in path.name, path.name
    assert sorted(s["codec_name"] for s in ffprobe(path)["streams"]) == ["opus", "vp8"]
    packets = video_packets(path)
    assert len(packets) > 30 and packets[0][1], f"{len(packets)} frames; first a keyframe: {packets[:1]}"
    # The bot's peers were only ever the relay's (one made before it knew the newcomer was the relay, if
    # the bot joined first, is replaced by the one answering the relay).
    peers = [line for line in bot.log_text(full=True).splitlines() if line.endswith("is in the call")]
    assert peers and all(" relay (" in line for line in peers), peers


def test_the_relay_sends_its_own_source_to_every_member_under_its_own_id(gateways):
    room = new_room_id()
    relay = gateways("relay-with-source", room, "--relay", "--size", "320x240", port=free_port())
    relay.wait_for_log("joining room")

    async def call() -> tuple[str, dict]:
        ada = RelayMember(relay.websocket(), room, "ada")
        try:
            await ada.start()
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and not (ada.relay and ada.video_frames[ada.relay] > 30
                                                       and ada.audio_frames[ada.relay] > 30):
                await asyncio.sleep(0.5)
            return ada.relay, {"video": ada.video_frames[ada.relay], "audio": ada.audio_frames[ada.relay],
                               "map": sorted((e["participant"] == ada.relay, e["kind"]) for e in ada.track_map.values())}
        finally:
            await ada.stop()

    _, received = asyncio.run(call())
    assert received["video"] > 30 and received["audio"] > 30, received
    # The track map names the relay for its own tracks, and the member for its own m-lines.
    assert received["map"] == [(False, "audio"), (False, "video"), (True, "audio"), (True, "video")], received


def test_the_in_process_server_of_a_relay_takes_a_room_capacity(gateways):
    """A relay room holds more people than a mesh: --room-capacity sets the in-process server's rooms;
    with --server it is refused (that server has its own)."""
    import urllib.request

    room = new_room_id()
    port = free_port()
    relay = gateways("relay", room, "--relay", "--video", "none", "--audio", "none", "--room-capacity", "12", port=port)
    relay.wait_for_log("joining room")
    deadline = time.monotonic() + 20
    rooms = []
    while time.monotonic() < deadline:
        rooms = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/api/rooms", timeout=5).read())["rooms"]
        if any(r["roomId"] == room for r in rooms):
            break
        time.sleep(0.2)
    [entry] = [r for r in rooms if r["roomId"] == room]
    assert entry["capacity"] == 12 and entry["relay"], entry
    refused = subprocess.run([str(gateway_binary()), "--room", room, "--server", f"ws://127.0.0.1:{port}/ws",
                              "--room-capacity", "12"], capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    assert refused.returncode != 0 and "vcall-server --room-capacity" in refused.stderr, refused.stderr
