"""Recordings in the web app: a logged-in participant presses the room page's record button (the gateway
records on request), then finds and plays the recordings at /recordings; another account and a guest get
404, and so does any path that is not a listed recording; an admin (`vcall-server user admin`) sees all."""

from __future__ import annotations

import http.client
import json
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from app_harness import Users, free_port, server_binary
from app_helpers import join, new_room_id, register, wait_connected
from gateway_harness import Gateway, recordings, wait_for_finalized


def raw_status(port: int, path: str, page) -> int:
    """GET `path` exactly as written (browsers and Playwright normalize `..` away before sending), with the
    page's session cookie."""
    cookies = "; ".join(f"{c['name']}={c['value']}" for c in page.context.cookies())
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", path, headers={"Cookie": cookies})
        return connection.getresponse().status
    finally:
        connection.close()


@pytest.fixture
def recorded_call(browser):
    record_dir = Path(tempfile.mkdtemp(prefix="vcall-rec-web-"))
    room = new_room_id()
    gateway = Gateway("recorder", room, "--record", str(record_dir), "--record-on-request", "--composite",
                      "--composite-size", "640x360", "--size", "640x360", port=free_port())
    users = Users(browser, gateway)
    yield gateway, users, room, record_dir
    users.close()
    gateway.stop()
    shutil.rmtree(record_dir, ignore_errors=True)


def test_a_participant_records_with_the_button_then_lists_and_plays_what_only_she_may_see(recorded_call):
    gateway, users, room, record_dir = recorded_call
    ada = users.new("ada")
    ada_account = register(ada)
    join(ada, room, "Ada")
    wait_connected(ada, 1)

    # The gateway records on request: the page offers the button, and nothing is recorded yet.
    record = ada.locator("#toggle-recording")
    record.wait_for(state="visible")
    assert record.inner_text().strip() == "Record"
    assert ada.locator("#recording-badge").is_hidden()
    assert recordings(record_dir) == []

    record.click()
    ada.locator("#recording-badge").wait_for(state="visible")
    assert "Stop recording" in record.inner_text()
    gateway.wait_for_log("asked to start recording")
    time.sleep(6)
    record.click()
    ada.locator("#recording-badge").wait_for(state="hidden")
    files = wait_for_finalized(record_dir, 2, timeout=20.0)
    composite = next(f for f in files if "-composite-" in f.name)
    own = next(f for f in files if f is not composite)
    for path in files:
        report = json.loads(path.with_suffix(".json").read_text())
        # Whoever was logged in in the room may watch it: the report names her account.
        assert report["accounts"] == [ada_account], report

    # /recordings lists both, newest first, and plays one with seeking (range requests).
    viewer = ada.context.new_page()
    viewer.goto("/recordings")
    viewer.wait_for_function("() => window.vcallRecordings && window.vcallRecordings.ok")
    listed = viewer.evaluate("() => window.vcallRecordings.entries")
    assert sorted(e["file"] for e in listed) == sorted(f.name for f in files), listed
    by_file = {e["file"]: e for e in listed}
    assert by_file[composite.name]["composite"] is True and by_file[composite.name].get("participant") is None
    assert by_file[own.name]["participant"] == "Ada" and by_file[own.name]["room"] == room
    assert by_file[composite.name]["duration"] >= 4 and by_file[composite.name]["bytes"] == composite.stat().st_size
    viewer.click(f'.recording-play[data-file="{composite.name}"]')
    viewer.wait_for_function("""() => { const v = document.getElementById('player');
        return v.readyState >= 1 && Number.isFinite(v.duration) && v.duration > 4; }""", timeout=15_000)
    viewer.evaluate("""async () => { const v = document.getElementById('player');
        v.muted = true; await v.play();
        await new Promise((resolve) => { v.addEventListener('seeked', resolve, { once: true }); v.currentTime = v.duration / 2; }); }""")
    middle = viewer.evaluate("() => document.getElementById('player').currentTime")
    viewer.wait_for_function(f"() => document.getElementById('player').currentTime > {middle} + 1", timeout=10_000)
    assert viewer.evaluate("() => document.getElementById('player').error") is None

    url = f"/recordings/{composite.name}"
    ranged = viewer.request.get(url, headers={"Range": "bytes=100-199"})
    assert ranged.status == 206, ranged.status
    assert ranged.headers["content-range"] == f"bytes 100-199/{composite.stat().st_size}", ranged.headers
    assert ranged.body() == composite.read_bytes()[100:200]
    assert viewer.request.get(url).headers["content-type"].startswith("video/webm")

    # The room page lists the room's recordings too.
    ada.click("#show-recordings")
    ada.locator(f'#recording-list .recording[data-file="{composite.name}"]').wait_for()

    # Nothing but a listed recording is served, not even to her: reports, other folders, `..`.
    for path in [f"/recordings/{composite.with_suffix('.json').name}", "/recordings/..%2Fdata%2Fvcall.sqlite",
                 "/recordings/%2e%2e", "/recordings/..", "/recordings/../data/vcall.sqlite", f"/recordings/..%2F{record_dir.name}%2F{composite.name}"]:
        assert raw_status(gateway.port, path, viewer) == 404, path
    assert raw_status(gateway.port, url, viewer) == 200

    # Another account was not in the room: it sees nothing, and the file is 404 as if it did not exist.
    bob = users.new("bob")
    bob_account = register(bob)
    mine = bob.request.get("/api/recordings")
    assert mine.status == 200 and mine.json()["recordings"] == [], mine.json()
    assert bob.request.get(url).status == 404
    # A guest: not logged in.
    guest = users.new("guest")
    guest.goto("/recordings")
    guest.wait_for_function("() => window.vcallRecordings && !window.vcallRecordings.ok")
    assert "Log in" in guest.locator("#recording-list").inner_text()
    assert guest.request.get("/api/recordings").status == 401
    assert guest.request.get(url).status == 404

    # An admin sees every recording.
    made_admin = subprocess.run([str(server_binary()), "user", "admin", bob_account, "--data-dir", str(gateway.work / "data")],
                                capture_output=True, text=True, timeout=30)
    assert made_admin.returncode == 0, made_admin.stderr
    assert "admin" in made_admin.stdout
    everything = bob.request.get("/api/recordings").json()
    assert everything["admin"] is True and len(everything["recordings"]) == 2, everything
    assert bob.request.get(url).status == 200
    unknown = subprocess.run([str(server_binary()), "user", "admin", "nobody-here", "--data-dir", str(gateway.work / "data")],
                             capture_output=True, text=True, timeout=30)
    assert unknown.returncode != 0 and "no account" in unknown.stderr, unknown.stderr
