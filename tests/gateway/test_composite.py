"""The composite recording (vcall-gateway --record DIR --composite): the meeting as one WebM file, checked
by its pixels and its sound, not only its metadata.

Participants are gateways sending solid colours (videotestsrc patterns red, lime green, blue) and tones
of distinct frequencies, so that each one's cell is found by colour and each one's voice by frequency in
the mixed track.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
import time
from pathlib import Path

import numpy
import pytest

from app_harness import free_port
from app_helpers import new_room_id
from gateway_harness import LOGS, decodes_cleanly, ffprobe, finalized_report, run_gateway, video_packets

WIDTH, HEIGHT = 1280, 720
# name: (videotestsrc pattern, RGB it decodes to, tone in Hz)
PEOPLE = {"ada": ("red", (255, 0, 0), 500), "bob": ("green", (0, 255, 0), 1200), "cy": ("blue", (0, 0, 255), 2600)}


@pytest.fixture
def record_dir():
    directory = Path(tempfile.mkdtemp(prefix="vcall-composite-"))
    yield directory
    for path in directory.iterdir():
        path.unlink()
    directory.rmdir()


def join(gateways, recorder, name: str, *args: str):
    pattern, _, tone = PEOPLE[name]
    return gateways(name, recorder.room, "--size", "640x360", *args, server=recorder.websocket(),
                    env={"VCALL_PATTERN": pattern, "VCALL_FREQ": str(tone), "VCALL_VOLUME": "0.2"})


def frame(path: Path, seconds: float) -> numpy.ndarray:
    """The composite's picture at `seconds`, as HEIGHT × WIDTH × RGB."""
    raw = subprocess.run(["ffmpeg", "-v", "error", "-ss", f"{seconds:.3f}", "-i", str(path), "-frames:v", "1",
                          "-f", "rawvideo", "-pix_fmt", "rgb24", "-"], capture_output=True, check=True, timeout=60).stdout
    assert len(raw) == WIDTH * HEIGHT * 3, f"no frame at {seconds:.2f} s"
    return numpy.frombuffer(raw, numpy.uint8).reshape(HEIGHT, WIDTH, 3)


def share_of(picture: numpy.ndarray, rgb: tuple[int, int, int]) -> float:
    """The share of the picture's pixels within 60 of `rgb` on every channel (VP8 blurs colours a little)."""
    close = numpy.all(numpy.abs(picture.astype(int) - numpy.array(rgb)) < 60, axis=2)
    return float(close.mean())


def cells_shown(picture: numpy.ndarray) -> set[str]:
    return {name for name, (_, rgb, _) in PEOPLE.items() if share_of(picture, rgb) > 0.03}


def label_pixels(picture: numpy.ndarray, rgb: tuple[int, int, int]) -> int:
    """Near-white pixels in the lowest fifth of the region painted `rgb`: the name label on that picture."""
    close = numpy.all(numpy.abs(picture.astype(int) - numpy.array(rgb)) < 60, axis=2)
    rows, columns = numpy.nonzero(close)
    if len(rows) == 0:
        return 0
    top, bottom, left, right = rows.min(), rows.max(), columns.min(), columns.max()
    band = picture[bottom - (bottom - top) // 5:bottom + 1, left:right + 1]
    return int(numpy.all(band > 200, axis=2).sum())


def tone_levels(path: Path, start: float, length: float) -> dict[str, float]:
    """Each person's tone in the mixed audio from `start` for `length` seconds: the spectrum's magnitude at
    their frequency over the median magnitude: about 1 for noise, tens for Opus's artefacts near a
    frequency nobody sends, millions for a tone that is there."""
    raw = subprocess.run(["ffmpeg", "-v", "error", "-ss", f"{start:.3f}", "-t", f"{length:.3f}", "-i", str(path), "-vn",
                          "-ac", "1", "-ar", "48000", "-f", "s16le", "-"], capture_output=True, check=True, timeout=60).stdout
    samples = numpy.frombuffer(raw, numpy.int16).astype(float)
    assert len(samples) > 48000 * length * 0.9, f"only {len(samples)} samples from {start:.1f} s"
    spectrum = numpy.abs(numpy.fft.rfft(samples * numpy.hanning(len(samples))))
    frequencies = numpy.fft.rfftfreq(len(samples), 1 / 48000)
    floor = float(numpy.median(spectrum)) or 1.0
    return {name: float(spectrum[numpy.abs(frequencies - tone) < 5].max()) / floor for name, (_, _, tone) in PEOPLE.items()}


def test_the_composite_shows_and_mixes_everyone_from_the_first_picture_as_they_come_and_go(gateways, record_dir):
    """ada and cy from the start, bob joining about 5 s later, cy leaving about 5 s after that: one file
    with VP8 and Opus that starts on a keyframe with ada's picture, lasts as long as the call, shows three
    labelled pictures while three were there and bob only after he came, and holds each one's voice."""
    recorder = gateways("recorder", new_room_id(), "--record", str(record_dir), "--composite", "--video", "none",
                        "--audio", "none", port=free_port())
    ada = join(gateways, recorder, "ada")
    recorder.wait_for_log("first frames of ada")
    start = time.monotonic()
    cy = join(gateways, recorder, "cy")
    recorder.wait_for_log("first frames of cy")
    time.sleep(4)
    mark = len(recorder.log_text(full=True))
    bob = join(gateways, recorder, "bob")
    recorder.wait_for_log("first frames of bob", after=mark)
    bob_joined = time.monotonic() - start
    time.sleep(5)
    cy_left = time.monotonic() - start
    assert cy.interrupt() == 0, cy.log_text()
    time.sleep(4)
    call = time.monotonic() - start
    assert recorder.interrupt() == 0, recorder.log_text()
    ada.stop()
    bob.stop()

    [path] = record_dir.glob("*-composite-*.webm")
    report = json.loads(path.with_suffix(".json").read_text())
    info = ffprobe(path)
    assert sorted(s["codec_name"] for s in info["streams"]) == ["opus", "vp8"], info["streams"]
    duration = float(info["format"]["duration"])
    print(f"composite {duration:.2f} s of a {call:.2f} s call; bob at {bob_joined:.1f} s, cy left at {cy_left:.1f} s; "
          f"{report['videoFrames']} frames, {report['framesDropped']} dropped")
    # The first picture came when ada's recording started: that is time zero (the log line follows it by a poll).
    assert abs(duration - call) <= 0.5 + 0.2, f"file {duration:.2f} s, call {call:.2f} s"
    packets = video_packets(path)
    assert packets[0][1], "the first frame is not a keyframe"
    assert decodes_cleanly(path) == ""

    first = frame(path, 0)
    assert "ada" in cells_shown(first), "the file does not open on ada's picture"

    before_bob = frame(path, bob_joined - 1.5)
    assert cells_shown(before_bob) == {"ada", "cy"}, cells_shown(before_bob)
    together = frame(path, (bob_joined + cy_left) / 2)
    LOGS.mkdir(parents=True, exist_ok=True)
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-ss", f"{(bob_joined + cy_left) / 2:.3f}", "-i", str(path),
                    "-frames:v", "1", str(LOGS / "composite-three.png")], check=True, timeout=60)
    assert cells_shown(together) == {"ada", "bob", "cy"}, cells_shown(together)
    for name, (_, rgb, _) in PEOPLE.items():
        assert label_pixels(together, rgb) > 40, f"no name label on {name}'s picture"
    after_cy = frame(path, cy_left + 2)
    assert cells_shown(after_cy) == {"ada", "bob"}, cells_shown(after_cy)

    levels = tone_levels(path, bob_joined + 1, cy_left - bob_joined - 2)
    assert all(level > 10_000 for level in levels.values()), f"a voice is missing while three were there: {levels}"
    before = tone_levels(path, 0.5, bob_joined - 1.5)
    assert before["bob"] < 1_000 < min(before["ada"], before["cy"]), f"bob heard before he came: {before}"
    after = tone_levels(path, cy_left + 1, call - cy_left - 1.5)
    assert after["cy"] < 1_000 < min(after["ada"], after["bob"]), f"cy heard after she left: {after}"

    assert report["finalizedCleanly"] is True and report["participantID"] == "composite"
    assert [p["name"] for p in report["participants"]] == ["ada", "cy", "bob"], report["participants"]
    assert report["framesDropped"] >= 0


def tile_share(picture: numpy.ndarray, box: tuple[int, int, int, int]) -> tuple[float, int]:
    """In `box` (x, y, width, height): the share of pixels that are neither black nor a test colour (a name
    tile's own colour), and the near-white pixels in its middle third (the name written on it)."""
    x, y, w, h = box
    region = picture[y:y + h, x:x + w].astype(int)
    colours = [numpy.all(numpy.abs(region - numpy.array(rgb)) < 60, axis=2) for _, rgb, _ in PEOPLE.values()]
    dark = numpy.all(region < 25, axis=2)
    tile = ~(dark | numpy.any(colours, axis=0))
    middle = region[h // 3:2 * h // 3]
    return float(tile.mean()), int(numpy.all(middle > 200, axis=2).sum())


def test_camera_off_shows_the_name_tile_and_a_shared_screen_gets_the_large_area(gateways, record_dir, tmp_path):
    """ada turns her video off (`video none`: black frames, and media-state says the camera is off): her
    cell shows her name tile, not black. bob shares his screen (a `screen` source that paints lime green,
    from a pipelines folder of the test's own): his picture takes the large area, ada's tile the strip."""
    pipelines = tmp_path / "pipelines"
    (pipelines / "video").mkdir(parents=True)
    (pipelines / "audio").mkdir()
    for kind, name in (("video", "test"), ("video", "none"), ("audio", "test")):
        (pipelines / kind / f"{name}.pipeline").write_text((Path(__file__).parents[2] / "pipelines" / kind / f"{name}.pipeline").read_text())
    (pipelines / "video" / "screen.pipeline").write_text("videotestsrc is-live=true pattern=green\n")
    recorder = gateways("recorder", new_room_id(), "--record", str(record_dir), "--composite", "--video", "none",
                        "--audio", "none", port=free_port())
    ada = join(gateways, recorder, "ada", "--pipelines", str(pipelines))
    recorder.wait_for_log("first frames of ada")
    start = time.monotonic()
    bob = join(gateways, recorder, "bob", "--pipelines", str(pipelines))
    recorder.wait_for_log("first frames of bob")
    time.sleep(2)
    ada.command("video none")
    ada.wait_for_log("video: none")
    ada_off = time.monotonic() - start
    time.sleep(3)
    bob.command("video screen")
    bob.wait_for_log("video: screen")
    bob_shares = time.monotonic() - start
    time.sleep(3)
    call = time.monotonic() - start
    assert recorder.interrupt() == 0, recorder.log_text()

    [path] = record_dir.glob("*-composite-*.webm")
    # Both on camera: side by side, each 640 wide.
    both = frame(path, ada_off - 1)
    assert cells_shown(both) == {"ada", "bob"}, cells_shown(both)
    # ada's camera off: her half shows her tile with her name, bob's picture stays.
    off = frame(path, ada_off + 2)
    assert cells_shown(off) == {"bob"}, cells_shown(off)
    ada_half = (0, 0, 640, 720) if share_of(off[:, 640:], PEOPLE["bob"][1]) > 0.1 else (640, 0, 640, 720)
    tile, name = tile_share(off, ada_half)
    assert tile > 0.2 and name > 40, f"ada's half is not her name tile: {tile:.2f} of it tile-coloured, {name} name pixels"
    # bob shares his screen: it fills the large area (all but the bottom fifth), ada's tile sits in the strip.
    shared = frame(path, min(bob_shares + 2, call - 0.5))
    main = shared[:576]
    assert share_of(main, PEOPLE["bob"][1]) > 0.6, f"bob's screen covers {share_of(main, PEOPLE['bob'][1]):.2f} of the large area"
    strip_tile, _ = tile_share(shared, (0, 576, 1280, 144))
    assert strip_tile > 0.05, f"ada's tile is not in the strip ({strip_tile:.2f})"
    LOGS.mkdir(parents=True, exist_ok=True)
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-ss", f"{min(bob_shares + 2, call - 0.5):.3f}", "-i", str(path),
                    "-frames:v", "1", str(LOGS / "composite-screen.png")], check=True, timeout=60)


def test_the_speaker_layout_gives_the_large_area_to_whoever_talks_without_flicker(gateways, record_dir):
    """`--layout speaker`: ada is silent (no audio at all), bob talks (his tone), cy is muted; bob takes the
    large area. Then bob mutes and cy unmutes: cy takes it. Two switches in all: a voice has to be the
    loudest for a second before the picture changes, so the change of speakers does not flicker."""
    recorder = gateways("recorder", new_room_id(), "--record", str(record_dir), "--composite", "--layout", "speaker",
                        "--video", "none", "--audio", "none", port=free_port())
    ada = join(gateways, recorder, "ada", "--audio", "none")
    recorder.wait_for_log("first frames of ada")
    start = time.monotonic()
    cy = join(gateways, recorder, "cy")
    cy.command("audio mute")
    cy.wait_for_log("audio muted")
    bob = join(gateways, recorder, "bob")
    recorder.wait_for_log("composite: bob is speaking", timeout=20)
    time.sleep(3)
    bob_speaks = time.monotonic() - start
    bob.command("audio mute")
    cy.command("audio unmute")
    cy.wait_for_log("audio unmuted")
    recorder.wait_for_log("composite: cy is speaking", timeout=20)
    time.sleep(3)
    cy_speaks = time.monotonic() - start
    assert recorder.interrupt() == 0, recorder.log_text()
    for gateway in (ada, bob, cy):
        gateway.stop()

    switches = [line for line in recorder.log_text(full=True).splitlines() if "is speaking" in line]
    assert len(switches) == 2, switches
    [path] = record_dir.glob("*-composite-*.webm")
    for name, at in (("bob", bob_speaks - 1), ("cy", cy_speaks - 1)):
        picture = frame(path, at)
        large = share_of(picture[:576], PEOPLE[name][1])
        assert large > 0.5, f"{name}'s picture covers {large:.2f} of the large area at {at:.1f} s"
        others = {other for other in ("ada", "bob", "cy") if other != name}
        assert all(share_of(picture[576:], PEOPLE[other][1]) > 0.05 for other in others), f"the strip at {at:.1f} s"


def test_an_empty_room_ends_the_composite_and_the_next_participant_starts_a_new_one(gateways, record_dir):
    """ada comes and goes: the composite ends when she leaves (finalized, as long as she was there), not
    hours of black later; bob comes later: a new composite starts with his picture. `status` lists it."""
    recorder = gateways("recorder", new_room_id(), "--record", str(record_dir), "--composite", "--video", "none",
                        "--audio", "none", port=free_port())
    ada = join(gateways, recorder, "ada")
    recorder.wait_for_log("first frames of ada")
    start = time.monotonic()
    time.sleep(3)
    assert "-composite-" in recorder.status(), recorder.status()
    assert ada.interrupt() == 0, ada.log_text()
    ada_stayed = time.monotonic() - start
    recorder.wait_for_log("the room is empty")
    deadline = time.monotonic() + 15
    while not ((files := list(record_dir.glob("*-composite-*.webm"))) and all(finalized_report(p) for p in files)):
        assert time.monotonic() < deadline, recorder.log_text()
        time.sleep(0.2)
    [first] = record_dir.glob("*-composite-*.webm")
    duration = float(ffprobe(first)["format"]["duration"])
    assert abs(duration - ada_stayed) <= 1.0, f"{duration:.2f} s for {ada_stayed:.2f} s with ada"
    assert json.loads(first.with_suffix(".json").read_text())["finalizedCleanly"] is True
    time.sleep(2)
    mark = len(recorder.log_text(full=True))
    bob = join(gateways, recorder, "bob")
    recorder.wait_for_log("first frames of bob", after=mark)
    time.sleep(3)
    assert recorder.interrupt() == 0, recorder.log_text()
    bob.stop()
    files = sorted(record_dir.glob("*-composite-*.webm"))
    assert len(files) == 2, [f.name for f in files]
    [second] = [f for f in files if f != first]
    report = json.loads(second.with_suffix(".json").read_text())
    assert [p["name"] for p in report["participants"]] == ["bob"], report["participants"]
    assert cells_shown(frame(second, 1.0)) == {"bob"}


def test_a_killed_composite_plays_to_the_kill_and_repair_writes_its_report(gateways, record_dir):
    """kill -9 mid-recording: the composite's report is still the provisional one (who, where, when; not
    finalized); `vcall-gateway repair` makes a seekable copy that plays to within a second of the kill,
    and writes its report, marked repaired."""
    recorder = gateways("recorder", new_room_id(), "--record", str(record_dir), "--composite", "--video", "none",
                        "--audio", "none", port=free_port())
    join(gateways, recorder, "ada")
    recorder.wait_for_log("first frames of ada")
    start = time.monotonic()
    # The composite's first clusters are on disk (on a loaded machine its first picture may come later).
    deadline = time.monotonic() + 20
    while not any(p.stat().st_size > 20_000 for p in record_dir.glob("*-composite-*.webm")):
        assert time.monotonic() < deadline, f"the composite wrote nothing: {recorder.log_text()}"
        time.sleep(0.1)
    time.sleep(6)
    recorder.kill()
    recorded = time.monotonic() - start

    [path] = record_dir.glob("*-composite-*.webm")
    provisional = json.loads(path.with_suffix(".json").read_text())
    assert provisional["finalizedCleanly"] is False and provisional["error"].startswith("not finalized"), provisional
    assert provisional["participantID"] == "composite" and provisional["room"] == recorder.room

    repaired_run = run_gateway("repair", str(path))
    assert repaired_run.returncode == 0, repaired_run.stdout + repaired_run.stderr
    repaired = path.with_name(path.stem + ".repaired.webm")
    duration = float(ffprobe(repaired)["format"]["duration"])
    assert recorded - 1.0 <= duration <= recorded + 0.5, f"repaired {duration:.2f} s of {recorded:.2f} s recorded"
    report = json.loads(repaired.with_suffix(".json").read_text())
    assert report["repaired"] is True and report["finalizedCleanly"] is True and report["file"] == repaired.name
    assert report["room"] == recorder.room and report["participantID"] == "composite"
    assert report["videoCodec"] == "VP8" and report["audioCodec"] == "OPUS" and report["videoFrames"] > 25 * (recorded - 1)
    assert abs(report["duration"] - duration) < 0.1
