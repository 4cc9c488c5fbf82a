"""vcall-gateway recording another vcall-gateway, as a user runs them: two processes, the recorder with
its in-process vcall-server, the sender joining it. Files are checked with ffprobe and ffmpeg.

Each call sends a 640x360 test pattern so that two gateways encoding at once keep 30 fps on 2 cores.
"""

from __future__ import annotations

import json
import re
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from app_harness import free_port
from app_helpers import new_room_id
from gateway_harness import (Gateway, Xvfb, decodes_cleanly, ffprobe, recordings, run_gateway,
                             video_packets)

SENDER_ARGS = ("--size", "640x360")


@pytest.fixture
def record_dir():
    directory = Path(tempfile.mkdtemp(prefix="vcall-rec-"))
    yield directory
    for path in directory.iterdir():
        path.unlink()
    directory.rmdir()


def start_recorded_call(gateways, record_dir: Path, *sender_args: str, sender_env: dict | None = None,
                        recorder_args: tuple[str, ...] = ()):
    """The recorder (with the in-process server, recording from the start) and a sender in one room;
    returns both once the recording has linked the sender's video and audio, and the time it did."""
    room = new_room_id()
    recorder = gateways("recorder", room, "--record", str(record_dir), "--video", "none", "--audio", "none",
                        *recorder_args, port=free_port())
    sender = gateways("sender", room, *SENDER_ARGS, *sender_args, server=recorder.websocket(), env=sender_env)
    # The recorder logs the branches it linked, in whichever order the tracks arrived:
    # "recording audio OPUS/111 on src_1, video VP8/96 on src_0".
    linked = re.compile(r"\brecording (audio|video) \w+/\d+ on src_\d+, (audio|video) \w+/\d+ on src_\d+")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        log = recorder.log_text(full=True)
        if any(linked.search(line) and "OPUS" in line and "VP8" in line for line in log.splitlines()):
            return recorder, sender, time.monotonic()
        time.sleep(0.05)
    raise AssertionError(f"the recorder never linked the sender's tracks:\n{recorder.log_text()}")


def offers_sent(gateway: Gateway) -> int:
    status = gateway.status()
    match = re.search(r"offers sent (\d+)", status)
    assert match, status
    return int(match.group(1))


def the_only_recording(record_dir: Path) -> Path:
    files = recordings(record_dir)
    assert len(files) == 1, f"expected one recording, found {[f.name for f in files]}"
    return files[0]


def assert_webm_vp8_opus(path: Path) -> dict:
    info = ffprobe(path)
    codecs = sorted(s["codec_name"] for s in info["streams"])
    assert codecs == ["opus", "vp8"], codecs
    assert info["format"]["format_name"].startswith("matroska,webm"), info["format"]
    return info


def test_gateway_records_another_gateway_vp8_opus_from_a_keyframe_with_every_frame(gateways, record_dir):
    recorder, sender, recording_started = start_recorded_call(gateways, record_dir)
    time.sleep(15)
    left = time.monotonic()
    # The sender quits: the recorder finalizes that participant's file when it leaves.
    assert sender.interrupt() == 0, sender.log_text()
    recorder.wait_for_log("finalized ", timeout=20)
    call_seconds = left - recording_started

    path = the_only_recording(record_dir)
    assert path.name.startswith(f"{recorder.room}-sender-") and path.name.endswith("Z.webm"), path.name
    info = assert_webm_vp8_opus(path)
    duration = float(info["format"]["duration"])
    assert abs(duration - call_seconds) <= 0.5, f"file {duration:.2f} s, call {call_seconds:.2f} s"

    packets = video_packets(path)
    assert packets and packets[0][1], f"the first video frame is not a keyframe: {packets[:3]}"
    sent = sender.frames_sent_to("recorder")
    assert len(packets) >= 0.95 * sent, f"{len(packets)} frames recorded of {sent} sent"
    assert decodes_cleanly(path) == ""

    # Finalized: run through repair, which leaves finalized files alone.
    check = run_gateway("repair", str(path))
    assert check.returncode == 0 and "already finalized" in check.stdout, check.stdout + check.stderr

    report = json.loads(path.with_suffix(".json").read_text())
    assert report["displayName"] == "sender" and report["room"] == recorder.room
    assert report["videoCodec"] == "VP8" and report["audioCodec"] == "OPUS"
    assert report["videoFrames"] == len(packets) and report["keyframes"] >= 1
    assert report["finalizedCleanly"] is True and report["videoGaps"] == []
    print(f"recorded {duration:.2f} s of a {call_seconds:.2f} s call; {len(packets)} of {sent} frames")


def test_sigint_finalizes_the_recording(gateways, record_dir):
    recorder, sender, _ = start_recorded_call(gateways, record_dir)
    time.sleep(5)
    # Ctrl-C on the recorder: it finalizes, then leaves the call.
    assert recorder.interrupt() == 0, recorder.log_text()
    path = the_only_recording(record_dir)
    info = assert_webm_vp8_opus(path)
    assert float(info["format"]["duration"]) > 4
    check = run_gateway("repair", str(path))
    assert "already finalized" in check.stdout, check.stdout + check.stderr
    assert json.loads(path.with_suffix(".json").read_text())["finalizedCleanly"] is True


def test_quitting_while_a_participant_who_left_is_being_finalized_waits_for_that_file(gateways, record_dir):
    """The sender leaves and the recorder is told to quit at once, while that file is still finalizing
    (its drain alone takes longer): quitting waits for it, so the file ends cleanly and has its report.
    (Found under systemd: the room emptied as the unit was stopped, and the report was missing.)"""
    recorder, sender, _ = start_recorded_call(gateways, record_dir)
    time.sleep(4)
    mark = len(recorder.log_text(full=True))
    assert sender.interrupt() == 0, sender.log_text()
    recorder.wait_for_log(" left", timeout=10, after=mark)
    assert "finalized " not in recorder.log_text(full=True)[mark:], "finalized before quitting: the test proves nothing"
    assert recorder.interrupt() == 0, recorder.log_text()
    path = the_only_recording(record_dir)
    assert float(assert_webm_vp8_opus(path)["format"]["duration"]) > 3
    assert json.loads(path.with_suffix(".json").read_text())["finalizedCleanly"] is True
    assert "finalized " in recorder.log_text(full=True)[mark:], recorder.log_text()


def test_sigkill_leaves_a_readable_file_that_repair_finalizes(gateways, record_dir):
    recorder, sender, recording_started = start_recorded_call(gateways, record_dir)
    time.sleep(8)
    killed = time.monotonic()
    recorder.kill()
    path = the_only_recording(record_dir)

    # Readable as it is, up to at most 2 s before the kill.
    packets = video_packets(path)
    assert packets and packets[0][1]
    recorded_until = packets[-1][0]
    # Clusters are cut every second and written unbuffered: what is lost is what was still in flight.
    assert recorded_until >= (killed - recording_started) - 1.0, \
        f"last frame at {recorded_until:.2f} s, killed at {killed - recording_started:.2f} s"

    result = run_gateway("repair", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
    repaired = path.with_name(path.stem + ".repaired.webm")
    assert repaired.exists(), result.stdout
    info = assert_webm_vp8_opus(repaired)
    assert abs(float(info["format"]["duration"]) - recorded_until) < 1.0
    assert len(video_packets(repaired)) == len(packets)
    assert decodes_cleanly(repaired) == ""
    print(f"kill -9 {killed - recording_started:.2f} s into the recording; the file plays to {recorded_until:.2f} s")
    again = run_gateway("repair", str(repaired))
    assert "already finalized" in again.stdout, again.stdout + again.stderr


def test_swapping_to_the_screen_and_back_needs_no_offer_and_the_far_side_keeps_decoding(gateways, record_dir):
    xvfb = Xvfb()
    try:
        recorder, sender, _ = start_recorded_call(gateways, record_dir, sender_env={"DISPLAY": xvfb.display})
        time.sleep(3)
        offers_before = offers_sent(sender), offers_sent(recorder)
        if not Path("/dev/video0").exists():
            # No camera here: a clear error, and the test pattern keeps going out.
            mark = sender.log_offset()
            sender.command("video camera")
            sender.wait_for_log("no camera at /dev/video0", timeout=15, after=mark)
            assert "video test" in sender.status(), sender.log_text()
        for source in ("screen", "test"):
            mark = sender.log_offset()
            sender.command(f"video {source}")
            sender.wait_for_log(f"video: {source}", timeout=15, after=mark)
            time.sleep(3)
        # A track swap, not a renegotiation: neither side sent another offer.
        assert (offers_sent(sender), offers_sent(recorder)) == offers_before
        assert sender.interrupt() == 0
        recorder.wait_for_log("finalized ", timeout=20)
    finally:
        xvfb.stop()

    path = the_only_recording(record_dir)
    times = [t for t, _ in video_packets(path)]
    longest = max(b - a for a, b in zip(times, times[1:]))
    assert longest <= 0.5, f"the far side went {longest:.3f} s without a frame"
    assert decodes_cleanly(path) == ""
    print(f"longest gap between recorded frames across two swaps: {longest * 1000:.0f} ms")


def udp_ports(pid: int) -> set[int]:
    """The local ports of the UDP sockets process `pid` holds (ss, in this test's network namespace)."""
    listing = subprocess.run(["ss", "-H", "-u", "-a", "-n", "-p"], check=True, capture_output=True, text=True).stdout
    ports = set()
    for line in listing.splitlines():
        if f"pid={pid}," in line:
            local = line.split()[3]  # State Recv-Q Send-Q Local:Port Peer:Port Process
            ports.add(int(local.rsplit(":", 1)[1]))
    return ports


def test_udp_ports_confine_every_ice_socket_and_the_call_still_records(gateways, record_dir):
    """--udp-ports MIN-MAX: every UDP socket the gateway binds for ICE (its warm-up peer's and each
    participant's) lies in the range a firewall would open, and the call connects and records."""
    low, high = 42100, 42139
    recorder, sender, _ = start_recorded_call(gateways, record_dir, recorder_args=("--udp-ports", f"{low}-{high}"))
    time.sleep(2)
    bound = udp_ports(recorder.process.pid)
    assert bound, "the recorder holds no UDP socket"
    assert all(low <= port <= high for port in bound), f"ports outside {low}-{high}: {sorted(bound)}"
    unconfined = udp_ports(sender.process.pid)
    assert unconfined and not all(low <= port <= high for port in unconfined), sorted(unconfined)
    assert sender.interrupt() == 0, sender.log_text()
    recorder.wait_for_log("finalized ", timeout=20)
    packets = video_packets(the_only_recording(record_dir))
    assert len(packets) > 30, f"{len(packets)} video frames recorded"
    # A range a firewall could not mean is refused before anything starts.
    refused = run_gateway("--room", "r", "--udp-ports", "40000-30000")
    assert refused.returncode != 0 and "--udp-ports" in refused.stderr, refused.stderr
