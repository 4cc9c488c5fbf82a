#!/usr/bin/env python3
"""What sending costs, measured on the real binaries (release build):

1. Fan-out: one gateway sends its 1280x720 30 fps test source to N receiving gateways (N = 1 and 10);
   its CPU at each N and their ratio. Encoding happens once, so the ratio should stay near 1
   (target ≤ 1.3).
2. Track swap: the sender swaps test ↔ screen (under Xvfb) 20 times while another gateway records it;
   the longest gap between consecutive video frames in the recording over the swaps, and the offers
   sent meanwhile (target: one frame, 33 ms, and zero offers).

    swift build -c release
    scripts/netns-run .venv/bin/python bench/gateway_media.py

Prints a table and writes bench/results/gateway_media.json.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "gateway"))

from gateway_recording import REPO, Process, free_port, write_results  # noqa: E402
from gateway_harness import Xvfb, video_packets  # noqa: E402


def offers_sent(gateway: Process) -> int:
    mark = len(gateway.text())
    gateway.process.stdin.write(b"status\n")
    gateway.process.stdin.flush()
    return int(gateway.wait_for(r"offers sent (\d+)", 10, mark).group(1))


def fan_out(binary: Path, receivers: int, seconds: float, work: Path) -> dict:
    port = free_port()
    # A server of its own (rooms of 8 by default; and its work is not the sender's).
    server = Process(binary.parent / "vcall-server", f"fanout-server-{receivers}", [
        "--host", "127.0.0.1", "--port", str(port), "--data-dir", str(work / f"data-fanout-{receivers}"),
        "--room-capacity", str(receivers + 1)], work)
    server.wait_for(r"Server started", 30)
    sender = Process(binary, f"fanout-sender-{receivers}", ["--room", "fanout", "--name", "sender", "--server",
                                                             f"ws://127.0.0.1:{port}/ws"], work)
    others: list[Process] = []
    try:
        sender.wait_for(r"joining room", 30)
        for index in range(receivers):
            others.append(Process(binary, f"fanout-receiver-{receivers}-{index}",
                                  ["--room", "fanout", "--name", f"receiver{index}", "--server", f"ws://127.0.0.1:{port}/ws",
                                   "--video", "none", "--audio", "none"], work))
        for index in range(receivers):
            sender.wait_for(rf"receiver{index}: connected", 60)
        time.sleep(5)
        before, start = sender.cpu_seconds(), time.monotonic()
        time.sleep(seconds)
        elapsed = time.monotonic() - start
        rss, _ = sender.memory_mb()
        return {"receivers": receivers, "cpu_core_fraction": (sender.cpu_seconds() - before) / elapsed, "rss_mb": rss}
    finally:
        for other in others:
            other.stop()
        sender.stop()
        server.stop()


def swaps(binary: Path, count: int, work: Path) -> dict:
    xvfb = Xvfb()
    port = free_port()
    recorder = Process(binary, "swap-recorder", ["--room", "swap", "--name", "recorder", "--port", str(port),
                                                 "--data-dir", str(work / "data-swap"), "--record", str(work / "rec-swap"),
                                                 "--video", "none", "--audio", "none"], work)
    os.environ["DISPLAY"] = xvfb.display
    sender = None
    try:
        recorder.wait_for(r"Server started", 30)
        sender = Process(binary, "swap-sender", ["--room", "swap", "--name", "sender", "--server", f"ws://127.0.0.1:{port}/ws"], work)
        recorder.wait_for(r"first frames of sender written", 30)
        time.sleep(2)
        offers_before = offers_sent(sender) + offers_sent(recorder)
        for index in range(count):
            source = "screen" if index % 2 == 0 else "test"
            mark = len(sender.text())
            sender.process.stdin.write(f"video {source}\n".encode())
            sender.process.stdin.flush()
            sender.wait_for(rf"video: {source}", 15, mark)
            time.sleep(1)
        offers_after = offers_sent(sender) + offers_sent(recorder)
        sender.stop()
        recorder.wait_for(r"finalized ", 20)
    finally:
        if sender:
            sender.stop()
        recorder.stop()
        xvfb.stop()
        del os.environ["DISPLAY"]
    [path] = sorted((work / "rec-swap").glob("*.webm"))
    times = [t for t, _ in video_packets(path)]
    gaps = sorted((b - a for a, b in zip(times, times[1:])), reverse=True)
    return {"swaps": count, "longest_gap_ms": gaps[0] * 1000, "second_longest_gap_ms": gaps[1] * 1000,
            "offers_during_swaps": offers_after - offers_before, "frames": len(times)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--swaps", type=int, default=20)
    parser.add_argument("--bin", type=Path, default=REPO / ".build" / "release" / "vcall-gateway",
                        help="vcall-gateway; vcall-server is taken from the same folder")
    options = parser.parse_args()
    if not options.bin.exists():
        raise SystemExit(f"{options.bin} not found: swift build -c release --product vcall-gateway")
    work = Path(tempfile.mkdtemp(prefix="vcall-bench-"))
    try:
        one = fan_out(options.bin, 1, options.seconds, work)
        ten = fan_out(options.bin, 10, options.seconds, work)
        swap = swaps(options.bin, options.swaps, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    ratio = ten["cpu_core_fraction"] / one["cpu_core_fraction"]
    print(f"vcall-gateway sending, {datetime.now().isoformat(timespec='seconds')}, {os.cpu_count()} cores")
    print(f"{'figure':58} {'value':>14}   target")
    print(f"{'sender CPU, 720p30 to 1 peer':58} {one['cpu_core_fraction'] * 100:>9.1f} % core")
    print(f"{'sender CPU, 720p30 to 10 peers':58} {ten['cpu_core_fraction'] * 100:>9.1f} % core")
    print(f"{'  ratio 10 peers / 1 peer':58} {ratio:>11.2f} ×     ≤ 1.3")
    print(f"{'sender RSS with 1 / 10 peers':58} {one['rss_mb']:>5.1f} / {ten['rss_mb']:.1f} MB")
    print(f"{'longest gap between recorded frames over ' + str(swap['swaps']) + ' swaps':58} {swap['longest_gap_ms']:>9.0f} ms      ≤ 33 ms")
    print(f"{'  second longest':58} {swap['second_longest_gap_ms']:>9.0f} ms")
    print(f"{'offers sent during the swaps':58} {swap['offers_during_swaps']:>12d}      0")
    write_results("gateway_media", {"fan_out": [one, ten], "ratio": ratio, "swap": swap})


if __name__ == "__main__":
    main()
