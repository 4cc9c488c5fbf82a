#!/usr/bin/env python3
"""What recording costs, measured on the real binaries: vcall-gateway processes in one room through the
recorder's in-process vcall-server.

1. Join → first recorded keyframe: a sender gateway joins the recorder's room; the time from the
   recorder learning of the join (its "is in the call" log line) to the first frames written to the
   participant's WebM ("first frames … written"), both stamped by the recorder's clock. --calls times.
2. The recorder's CPU and RSS while it records one participant (a 1280x720 VP8 ~1.5 Mbit/s + Opus
   sender), next to a baseline measured in the same run: the same gateway in the same call, not recording.

Run it inside the test network namespace (libnice skips loopback), with release binaries:

    swift build -c release --product vcall-gateway
    scripts/netns-run .venv/bin/python bench/gateway_recording.py --calls 20 --seconds 30

Prints a table and writes bench/results/gateway_recording.json.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import tempfile
import time
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Process:
    def __init__(self, binary: Path, label: str, args: list[str], logs: Path, env: dict[str, str] | None = None) -> None:
        self.label = label
        self.log_path = logs / f"{label}.log"
        self.log = open(self.log_path, "wb")
        self.process = subprocess.Popen([str(binary), *args], stdin=subprocess.PIPE, stdout=self.log,
                                        stderr=subprocess.STDOUT, cwd=REPO, start_new_session=True,
                                        env={**os.environ, **(env or {})})

    def text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for(self, pattern: str, timeout: float, after: int = 0) -> re.Match:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            match = re.search(pattern, self.text()[after:])
            if match:
                return match
            if self.process.poll() is not None:
                break
            time.sleep(0.02)
        raise RuntimeError(f"{self.label}: /{pattern}/ not logged within {timeout}s:\n{self.text()[-3000:]}")

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime

    def memory_mb(self) -> tuple[float, float]:
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        rss = int(re.search(r"VmRSS:\s+(\d+)", status).group(1)) / 1024
        peak = int(re.search(r"VmHWM:\s+(\d+)", status).group(1)) / 1024
        return rss, peak

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.log.close()


def write_results(name: str, payload: dict) -> Path:
    """Writes bench/results/NAME.json (the run's date first) and returns the results folder."""
    results = REPO / "bench" / "results"
    results.mkdir(parents=True, exist_ok=True)
    (results / f"{name}.json").write_text(json.dumps({"date": datetime.now().isoformat(timespec="seconds"), **payload}, indent=2))
    return results


def clock(stamp: str) -> float:
    """Seconds since midnight from the log's HH:MM:SS.fff."""
    t = datetime.strptime(stamp, "%H:%M:%S.%f")
    return t.hour * 3600 + t.minute * 60 + t.second + t.microsecond / 1e6


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def join_to_first_keyframe(binary: Path, calls: int, work: Path) -> list[float]:
    port = free_port()
    recorder = Process(binary, "setup-recorder", ["--room", "bench", "--name", "recorder", "--port", str(port),
                                                  "--data-dir", str(work / "data-setup"), "--record", str(work / "rec-setup"),
                                                  "--video", "none", "--audio", "none"], work)
    results = []
    try:
        recorder.wait_for(r"Server started", 30)
        for call in range(calls):
            name = f"sender{call}"
            mark = len(recorder.text())
            sender = Process(binary, name, ["--room", "bench", "--name", name, "--server", f"ws://127.0.0.1:{port}/ws"], work)
            try:
                joined = recorder.wait_for(rf"(\d\d:\d\d:\d\d\.\d+) info {name} \(\w+\) is in the call", 30, mark)
                written = recorder.wait_for(rf"(\d\d:\d\d:\d\d\.\d+) info first frames of {name} written", 30, mark)
                results.append((clock(written.group(1)) - clock(joined.group(1))) * 1000)
            finally:
                sender.stop()
            recorder.wait_for(rf"finalized \S*-{name}-", 20, mark)
    finally:
        recorder.stop()
    return results


def recorder_cost(binary: Path, record: bool, seconds: float, work: Path) -> dict:
    port = free_port()
    label = "recording" if record else "baseline"
    args = ["--room", "cost", "--name", "recorder", "--port", str(port), "--data-dir", str(work / f"data-{label}"),
            "--video", "none", "--audio", "none"]
    if record:
        args += ["--record", str(work / "rec-cost")]
    recorder = Process(binary, f"cost-{label}", args, work)
    sender = None
    try:
        recorder.wait_for(r"Server started", 30)
        sender = Process(binary, f"cost-sender-{label}", ["--room", "cost", "--name", "sender", "--server",
                                                          f"ws://127.0.0.1:{port}/ws"], work)
        recorder.wait_for(r"sender: connected", 30)
        if record:
            recorder.wait_for(r"first frames of sender written", 30)
        time.sleep(5)  # settle: first keyframes, bitrate ramp-up
        cpu_before, sender_before, start = recorder.cpu_seconds(), sender.cpu_seconds(), time.monotonic()
        time.sleep(seconds)
        elapsed = time.monotonic() - start
        cpu = (recorder.cpu_seconds() - cpu_before) / elapsed
        sender_cpu = (sender.cpu_seconds() - sender_before) / elapsed
        rss, peak = recorder.memory_mb()
        return {"cpu_core_fraction": cpu, "rss_mb": rss, "peak_rss_mb": peak, "sender_cpu_core_fraction": sender_cpu,
                "seconds": elapsed}
    finally:
        if sender:
            sender.stop()
        recorder.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--bin", type=Path, default=REPO / ".build" / "release" / "vcall-gateway")
    options = parser.parse_args()
    if not options.bin.exists():
        raise SystemExit(f"{options.bin} not found: swift build -c release --product vcall-gateway")
    work = Path(tempfile.mkdtemp(prefix="vcall-bench-"))
    try:
        setup = join_to_first_keyframe(options.bin, options.calls, work)
        baseline = recorder_cost(options.bin, False, options.seconds, work)
        recording = recorder_cost(options.bin, True, options.seconds, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print(f"vcall-gateway recording, {datetime.now().isoformat(timespec='seconds')}, {os.cpu_count()} cores")
    print(f"{'figure':58} {'value':>12}")
    print(f"{'join → first recorded keyframe, median (' + str(len(setup)) + ' calls)':58} {statistics.median(setup):>9.0f} ms")
    print(f"{'join → first recorded keyframe, p95':58} {percentile(setup, 0.95):>9.0f} ms")
    print(f"{'recorder CPU, not recording (baseline, same call)':58} {baseline['cpu_core_fraction'] * 100:>9.1f} % of a core")
    print(f"{'recorder CPU, recording one participant':58} {recording['cpu_core_fraction'] * 100:>9.1f} % of a core")
    added = recording['cpu_core_fraction'] - baseline['cpu_core_fraction']
    print(f"{'  added by recording (ratio to baseline)':58} {added * 100:>9.1f} % ({recording['cpu_core_fraction'] / max(baseline['cpu_core_fraction'], 1e-9):.2f}×)")
    print(f"{'recorder RSS, not recording / recording':58} {baseline['rss_mb']:>5.1f} / {recording['rss_mb']:.1f} MB")
    print(f"{'recorder peak RSS while recording':58} {recording['peak_rss_mb']:>9.1f} MB")
    print(f"{'sender CPU (720p30 VP8 encode + send), for scale':58} {recording['sender_cpu_core_fraction'] * 100:>9.1f} % of a core")
    write_results("gateway_recording", {"join_to_first_keyframe_ms": setup,
         "baseline": baseline, "recording": recording})


if __name__ == "__main__":
    main()
