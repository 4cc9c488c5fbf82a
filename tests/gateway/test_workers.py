"""Recording workers (`vcall-gateway worker`) on a real PostgreSQL database: a recording asked for from the web
app becomes a job one worker takes; killed with SIGKILL, its job passes to the other worker when the lease
runs out, which records part 2; both parts are readable (part 1 after `repair`) and together cover the call.
Slots bound what one worker takes, and the API says why a job waits."""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from datetime import datetime
from pathlib import Path

import pytest

from app_harness import PostgresCluster, Server, Users
from app_helpers import join, new_room_id, register, wait_connected
from gateway_harness import LOGS, ffprobe, gateway_binary, run_gateway

LEASE = 6.0


class Worker:
    """One `vcall-gateway worker` process, its log in test-output/gateway."""

    def __init__(self, label: str, server: Server, database: str, record_dir: Path, *args: str) -> None:
        self.label = label
        LOGS.mkdir(parents=True, exist_ok=True)
        self.log_path = LOGS / f"worker-{label}-{secrets.token_hex(3)}.log"
        self.log = open(self.log_path, "wb")
        self.process = subprocess.Popen(
            [str(gateway_binary()), "worker", "--server", server.url.replace("http://", "ws://") + "/ws", "--database", database,
             "--record", str(record_dir), "--worker-id", label, "--lease", str(LEASE), *args],
            stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for_log(self, text: str, timeout: float = 30.0) -> float:
        """Waits until the log holds `text`; returns the monotonic time it was seen."""
        deadline = time.monotonic() + timeout
        while text not in self.log_text():
            assert self.process.poll() is None or text in self.log_text(), f"worker {self.label} exited: {self.log_text()}"
            assert time.monotonic() < deadline, f"worker {self.label} never logged {text!r}: {self.log_text()}"
            time.sleep(0.05)
        return time.monotonic()

    def kill(self) -> None:
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGINT)
            try:
                self.process.wait(timeout=40)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        self.log.close()


@pytest.fixture(scope="module")
def cluster():
    c = PostgresCluster()
    yield c
    c.remove()


@pytest.fixture
def pool(browser, cluster):
    """A vcall-server on a fresh database listing the shared recordings folder, two workers, and pages."""
    database = cluster.new_database()
    record_dir = Path(tempfile.mkdtemp(prefix="vcall-workers-"))
    server = Server("--database", database, "--recordings", str(record_dir), "--resume-grace", "5")
    workers = {label: Worker(label, server, database, record_dir, "--composite-size", "640x360",
                                     "--empty-room-grace", "4") for label in ("w1", "w2")}
    users = Users(browser, server)
    yield server, workers, users, record_dir
    users.close()
    for worker in workers.values():
        worker.stop()
    server.stop()
    shutil.rmtree(record_dir, ignore_errors=True)


def job_state(page, room: str) -> dict:
    return page.evaluate("async (room) => (await fetch(`/api/rooms/${room}/recording`)).json()", room)


def api(page, method: str, room: str) -> tuple[int, dict]:
    return tuple(page.evaluate(
        """async ([method, room]) => {
             const r = await fetch(`/api/rooms/${room}/recording`, { method });
             return [r.status, await r.json()];
           }""", [method, room]))


def wait_for_job(page, room: str, predicate, timeout: float = 30.0) -> dict:
    deadline = time.monotonic() + timeout
    while not predicate(state := job_state(page, room)):
        assert time.monotonic() < deadline, state
        time.sleep(0.2)
    return state


def iso(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def test_a_killed_workers_recording_is_continued_by_the_other_within_the_lease(pool):
    server, workers, users, record_dir = pool
    room = new_room_id()
    ada = users.new("ada")
    register(ada)
    join(ada, room, "Ada")

    # Nobody records the room, but the server has workers: the button is there and asks for a job.
    record = ada.locator("#toggle-recording")
    record.wait_for(state="visible")
    assert record.inner_text().strip() == "Record"
    record.click()
    # A worker's recorder joins the room, records from the start, and says so.
    ada.locator("#recording-badge").wait_for(state="visible", timeout=30_000)
    wait_connected(ada, 1)
    state = wait_for_job(ada, room, lambda s: (s.get("job") or {}).get("state") == "recording")
    job = state["job"]
    assert job["part"] == 1 and job["composite"] is True, job
    first, other = workers[job["worker"]], workers[next(label for label in workers if label != job["worker"])]
    first.wait_for_log("first frames of Ada")

    # Part 1 is on disk (its clusters are written every second); then the worker dies.
    deadline = time.monotonic() + 20
    while not any(p.stat().st_size > 20_000 for p in record_dir.glob("*-composite-*.webm")):
        assert time.monotonic() < deadline, first.log_text()
        time.sleep(0.1)
    time.sleep(4)
    part1 = sorted(record_dir.glob("*.webm"))
    killed = time.monotonic()
    first.kill()

    # The other worker takes the job when the lease runs out, and records part 2 in new files.
    taken = other.wait_for_log(f"job {job['id']}: recording room {room} with the composite, part 2", timeout=LEASE + 10)
    print(f"the other worker took the job {taken - killed:.1f} s after the kill (lease {LEASE:.0f} s)")
    assert taken - killed <= LEASE + 1.0
    other.wait_for_log("first frames of Ada", timeout=20)
    state = wait_for_job(ada, room, lambda s: s["job"]["part"] == 2 and s["job"]["worker"] == other.label)
    time.sleep(5)

    # Stop from the page: the recorder in the room (the second worker's) finalizes and completes the job.
    assert "Stop recording" in record.inner_text()
    record.click()
    done = wait_for_job(ada, room, lambda s: s["job"]["state"] == "done", timeout=40)["job"]
    part2 = [record_dir / name for name in done["files"] if record_dir / name not in part1]
    assert {p.name for p in part1} <= set(done["files"]), (part1, done)
    assert len(part1) == 2 and len(part2) == 2, (part1, part2, done)
    # The job carries the reports its second worker finalized (the first died before it could write any).
    assert sorted(r["file"] for r in done["reports"]) == sorted(p.name for p in part2), done
    assert all(r["finalizedCleanly"] and r["room"] == room for r in done["reports"]), done

    for kind in ("composite", "Ada"):
        [old] = [p for p in part1 if ("-composite-" in p.name) == (kind == "composite")]
        [new] = [p for p in part2 if ("-composite-" in p.name) == (kind == "composite")]
        # Part 1 ended with the kill: its report is the provisional one until `repair` finalizes a copy.
        provisional = json.loads(old.with_suffix(".json").read_text())
        assert provisional["finalizedCleanly"] is False, provisional
        repaired_run = run_gateway("repair", str(old))
        assert repaired_run.returncode == 0, repaired_run.stdout + repaired_run.stderr
        repaired = old.with_name(old.stem + ".repaired.webm")
        first_report = json.loads(repaired.with_suffix(".json").read_text())
        second_report = json.loads(new.with_suffix(".json").read_text())
        assert first_report["repaired"] is True and second_report["finalizedCleanly"] is True, (first_report, second_report)
        for path, report in ((repaired, first_report), (new, second_report)):
            info = ffprobe(path)
            assert {s["codec_name"] for s in info["streams"]} == {"vp8", "opus"}, info
            assert float(info["format"]["duration"]) > 3, info
        end1 = iso(first_report["start"]) + first_report["duration"]
        gap = iso(second_report["start"]) - end1
        print(f"{kind}: part 1 {first_report['duration']:.1f} s, part 2 {second_report['duration']:.1f} s, {gap:.1f} s missing between them")
        assert 0 <= gap <= LEASE + 2.0, (first_report, second_report)
    ada.locator("#recording-badge").wait_for(state="hidden", timeout=20_000)


def test_a_paused_worker_loses_its_job_to_the_other_and_writes_nothing_to_it(pool):
    """SIGSTOP past the lease, as a long GC pause or a frozen VM would: the other worker takes the job as part 2;
    woken with SIGCONT, the first finds its lease gone (the fencing token moved on), finalizes its own files and
    leaves the job to the other."""
    server, workers, users, record_dir = pool
    room = new_room_id()
    ada = users.new("ada")
    register(ada)
    join(ada, room, "Ada")
    status, answer = api(ada, "POST", room)
    assert status == 202, answer
    job = wait_for_job(ada, room, lambda s: s["job"]["state"] == "recording")["job"]
    first, other = workers[job["worker"]], workers[next(label for label in workers if label != job["worker"])]
    first.wait_for_log("first frames of Ada")
    os.killpg(first.process.pid, signal.SIGSTOP)
    try:
        other.wait_for_log(f"job {job['id']}: recording room {room} with the composite, part 2", timeout=LEASE + 10)
    finally:
        os.killpg(first.process.pid, signal.SIGCONT)
    first.wait_for_log(f"job {job['id']}: lease lost to another worker; finalizing", timeout=10)
    first.wait_for_log(f"job {job['id']}: another worker holds it now", timeout=20)
    held = job_state(ada, room)["job"]
    assert held["state"] == "recording" and held["worker"] == other.label and held["part"] == 2, held
    other.wait_for_log("first frames of Ada", timeout=20)
    time.sleep(2)

    status, answer = api(ada, "DELETE", room)
    assert status == 200, answer
    done = wait_for_job(ada, room, lambda s: s["job"]["state"] == "done", timeout=30)["job"]
    # Only the worker holding the job wrote its end: the reports are the second worker's part alone, while the
    # first worker's own files were finalized all the same.
    mine = {Path(path).name for path in re.findall(r" to (\S+\.webm)", first.log_text())}
    assert len(mine) == 2, first.log_text()
    assert done["worker"] == other.label and len(done["reports"]) == 2, done
    assert not mine & {r["file"] for r in done["reports"]}, (mine, done)
    for name in mine:
        assert json.loads((record_dir / name).with_suffix(".json").read_text())["finalizedCleanly"] is True, name


def test_jobs_wait_while_every_slot_is_taken_and_the_api_says_why(pool):
    server, workers, users, record_dir = pool
    workers["w2"].stop()
    busy, waiting = new_room_id(), new_room_id()
    ada = users.new("ada")
    register(ada)
    join(ada, busy, "Ada")

    status, answer = api(ada, "POST", busy)
    assert status == 202, answer
    wait_for_job(ada, busy, lambda s: s["job"]["state"] == "recording" and s["job"]["worker"] == "w1")
    # w1 has one slot, and it is taken: the next job waits, and says why.
    status, answer = api(ada, "POST", waiting)
    assert status == 202 and answer["job"]["state"] == "waiting", answer
    deadline = time.monotonic() + 10
    while "every recording worker is busy (1 of 1 slot(s) on 1 worker(s))" not in (answer := job_state(ada, waiting))["message"]:
        assert time.monotonic() < deadline, answer
        time.sleep(0.3)
    time.sleep(2)
    assert job_state(ada, waiting)["job"]["state"] == "waiting"

    # The first recording stops: its slot goes to the waiting job.
    status, answer = api(ada, "DELETE", busy)
    assert status == 200 and answer["job"]["stopRequested"] is True, answer
    done = wait_for_job(ada, busy, lambda s: s["job"]["state"] == "done", timeout=30)["job"]
    assert len(done["files"]) == 2 and all((record_dir / name).is_file() for name in done["files"]), done
    job = wait_for_job(ada, waiting, lambda s: s["job"]["state"] == "recording" and s["job"]["worker"] == "w1", timeout=15)["job"]
    # Nobody is in that room: the recording ends by itself after the grace (4 s here), with no files.
    workers["w1"].wait_for_log(f"job {job['id']}: the room is empty", timeout=20)
    ended = wait_for_job(ada, waiting, lambda s: s["job"]["state"] == "done", timeout=20)["job"]
    assert ended["files"] == [], ended

    # Stopped with SIGINT mid-recording, the worker finalizes its files and hands the job back to the queue,
    # where it waits for another worker as part 2; the worker leaves the pool.
    status, answer = api(ada, "POST", busy)
    assert status == 202, answer
    job = wait_for_job(ada, busy, lambda s: s["job"]["state"] == "recording", timeout=15)["job"]
    deadline = time.monotonic() + 20
    while not (files := wait_for_job(ada, busy, lambda s: True)["job"]["files"]):
        assert time.monotonic() < deadline, workers["w1"].log_text()
        time.sleep(0.5)
    time.sleep(2)
    workers["w1"].stop()
    log = workers["w1"].log_text()
    assert "stopping: finalizing recordings" in log and f"job {job['id']}: handed back to the queue" in log, log
    back = job_state(ada, busy)
    assert back["job"]["state"] == "waiting" and back["job"]["part"] == 1, back
    assert len(back["job"]["files"]) == 2 and all((record_dir / f).is_file() for f in back["job"]["files"]), back
    assert sorted(r["file"] for r in back["job"]["reports"]) == sorted(back["job"]["files"]), back
    assert back["pool"]["workers"] == 0 and "no recording worker is running" in back["message"], back
    status, answer = api(ada, "DELETE", busy)
    assert status == 200 and answer["job"]["state"] == "cancelled", answer
