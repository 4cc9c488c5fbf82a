#!/usr/bin/env python3
"""The relay (SFU) against Janus VideoRoom, in one run: for rooms of 2, 4, 6 and 8 participants,
`vcall-bench relay-room` joins them one by one (real webrtcbin peers sending one shared, encoded-once
720p VP8 ~1.5 Mbit/s + Opus stream, each receiving and counting everyone else's video) through

- a vcall relay: vcall-server, and `vcall-gateway --relay --video none --audio none` as the room's relay;
- Janus 1.1.2 VideoRoom (Debian's `janus`): each participant publishes on one connection and
  subscribes to all the others on a second (Janus's multistream subscription);
- a vcall mesh (no relay), for each participant's upload only.

All participants live in one process, which receives every forwarded stream: on a 2-core machine a room
of 6 or more at 720p saturates it (its CPU is printed), and frames are then lost to the machine for
every system alike. So rooms of --light-sizes run again with a 360p ~0.5 Mbit/s stream, which the
machine holds, to show how the hub scales with the room.

Per system and size: the hub's CPU per forwarded stream (one participant's video + audio to one
subscriber) and RSS per forwarded stream over its idle RSS, frames lost end to end (encoder frames in the
window against frames each subscriber got of each publisher, in the same process), each participant's
upload, join → first decoded frame at the newcomer (median, p95), and a subscriber's PLI → the
forwarded keyframe arriving (no periodic keyframes: every keyframe is one someone asked for).

Janus skips loopback, so this runs inside scripts/netns-run (its veth pair gives Janus an address):

    swift build -c release
    scripts/netns-run .venv/bin/python bench/relay.py --sizes 2,4,6,8 --light-sizes 6,8 --seconds 20

Prints a table with the targets and writes bench/results/relay.json.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from gateway_recording import REPO, Process, free_port, percentile, write_results
from janus_config import write_janus_config


PROFILES = {"720p": ["--width", "1280", "--height", "720", "--video-bitrate", "1500000"],
            "360p": ["--width", "640", "--height", "360", "--video-bitrate", "500000"]}


def room_run(bins: Path, work: Path, label: str, args: list[str], timeout: float) -> dict:
    out = work / f"{label}.json"
    bench = Process(bins / "vcall-bench", label, ["relay-room", *args, "--json", str(out)], work)
    try:
        code = bench.process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        bench.stop()
        raise RuntimeError(f"{label}: no result within {timeout:.0f} s:\n{bench.text()[-3000:]}")
    bench.stop()
    if code != 0 or not out.exists():
        raise RuntimeError(f"{label}: vcall-bench relay-room failed ({code}):\n{bench.text()[-3000:]}")
    return json.loads(out.read_text())


def vcall(bins: Path, work: Path, size: int, seconds: float, relay: bool, profile: str) -> dict:
    port = free_port()
    data = work / f"data-{profile}-{size}-{relay}"
    server = Process(bins / "vcall-server", f"server-{profile}-{size}-{'relay' if relay else 'mesh'}",
                     ["--host", "127.0.0.1", "--port", str(port), "--data-dir", str(data), "--room-capacity", "16"], work)
    gateway = None
    try:
        server.wait_for(r"Server started|listening", 30)
        room = f"{'relay' if relay else 'mesh'}-{profile}-{size}"
        args = ["--server", f"ws://127.0.0.1:{port}/ws", "--room", room, "--count", str(size), "--seconds", str(seconds),
                *PROFILES[profile]]
        if relay:
            token = subprocess.run([str(bins / "vcall-server"), "token", "create", "bench-relay", "--data-dir", str(data)],
                                   capture_output=True, text=True, check=True).stdout.split()[-1]
            gateway = Process(bins / "vcall-gateway", f"relay-{profile}-{size}", [
                "--room", room, "--relay", "--server", f"ws://127.0.0.1:{port}/ws", "--token", token,
                "--video", "none", "--audio", "none", "--name", "relay"], work)
            gateway.wait_for(r"joining room", 30)
            time.sleep(1)
            args += ["--hub-pid", str(gateway.process.pid)]
        else:
            args += ["--pli-samples", "0"]
        return room_run(bins, work, f"bench-{room}", args, 240 + seconds)
    finally:
        for process in (gateway, server):
            if process:
                process.stop()


def janus(bins: Path, work: Path, size: int, seconds: float, profile: str) -> dict:
    port = free_port()
    name = f"janus-{profile}-{size}"
    command = write_janus_config(work / name, port)
    log = open(work / f"{name}.log", "wb")
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while "Websockets server started" not in (work / f"{name}.log").read_text(errors="replace"):
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError("Janus did not start:\n" + (work / f"{name}.log").read_text(errors="replace")[-3000:])
            time.sleep(0.1)
        time.sleep(1)
        return room_run(bins, work, f"bench-{name}", [
            "--janus", f"ws://127.0.0.1:{port}", "--room", str(1000 + size), "--count", str(size),
            "--seconds", str(seconds), "--hub-pid", str(process.pid), *PROFILES[profile]], 240 + seconds)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def summarize(result: dict) -> dict:
    streams = result["forwardedStreams"]
    sent = result["framesSentPerStream"]
    received = result["framesReceived"]
    joins = result["joinToFirstFrameMs"]
    plis = result["pliToKeyframeMs"]
    cpu = result.get("hubCPUPercent")
    rss, idle = result.get("hubRSSMiB"), result.get("hubRSSBaselineMiB")
    return {
        "participants": result["count"], "forwarded_streams": streams,
        "cpu_percent": cpu, "cpu_percent_per_stream": cpu / streams if cpu is not None and streams else None,
        "participants_cpu_percent": result.get("participantsCPUPercent"),
        "rss_mib": rss, "rss_per_stream_mib": (rss - idle) / streams if rss is not None and idle is not None and streams else None,
        # In-flight frames at the window's two ends cancel out; a subscriber ahead by a frame counts as none lost.
        "frames_lost": sum(max(0, sent - r) for r in received), "frames_expected": sent * len(received),
        "packets_lost": result["packetsLost"],
        "upload_mbps": statistics.mean(result["uploadMbps"]) if result["uploadMbps"] else 0,
        "join_ms_median": statistics.median(joins) if joins else None, "join_ms_p95": percentile(joins, 0.95) if joins else None,
        "pli_ms_median": statistics.median(plis) if plis else None, "pli_ms_max": max(plis) if plis else None,
        "raw": result,
    }


def fmt(value, spec: str = ".2f") -> str:
    return "—" if value is None else format(value, spec)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="2,4,6,8", help="room sizes with the 720p ~1.5 Mbit/s stream")
    parser.add_argument("--light-sizes", default="6,8", help="room sizes run again with 360p ~0.5 Mbit/s ('' for none)")
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--keep", action="store_true", help="keep the logs (printed folder)")
    parser.add_argument("--bin-dir", type=Path, default=REPO / ".build" / "release")
    options = parser.parse_args()
    for name in ("vcall-gateway", "vcall-server", "vcall-bench"):
        if not (options.bin_dir / name).exists():
            raise SystemExit(f"{options.bin_dir / name} not found: swift build -c release --product {name}")
    if not shutil.which("janus"):
        raise SystemExit("janus not found: scripts/setup --bench installs it")
    work = Path(tempfile.mkdtemp(prefix="vcall-relay-bench-"))
    rows = []
    try:
        runs = [("720p", int(n)) for n in options.sizes.split(",") if n] + \
               [("360p", int(n)) for n in options.light_sizes.split(",") if n]
        for profile, size in runs:
            row = {"participants": size, "profile": profile}
            for system, run in (("vcall", lambda: vcall(options.bin_dir, work, size, options.seconds, True, profile)),
                                ("janus", lambda: janus(options.bin_dir, work, size, options.seconds, profile)),
                                ("mesh", lambda: vcall(options.bin_dir, work, size, min(options.seconds, 10), False, profile))):
                row[system] = summarize(run())
                s = row[system]
                print(f"{profile}, {size} participants, {system}: hub CPU {fmt(s['cpu_percent'], '.1f')} % of a core, "
                      f"participants' process {fmt(s['participants_cpu_percent'], '.0f')} %, "
                      f"upload {s['upload_mbps']:.2f} Mbit/s each, {s['frames_lost']} of {s['frames_expected']} frames lost, "
                      f"join → first frame median {fmt(s['join_ms_median'], '.0f')} ms", flush=True)
            rows.append(row)
    finally:
        if options.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)

    print("\nrelay vs Janus VideoRoom (per forwarded stream = one participant's 720p VP8 + Opus to one subscriber)")
    print("targets: CPU ≤ 1 % of a core per stream and ≤ Janus's; frames lost 0; join → first frame median ≤ 300 ms")
    header = (f"{'stream':>6} {'N':>2} {'fwd':>3} | {'CPU %/stream':>12} {'Janus':>6} | {'RSS MiB/stream':>14} {'Janus':>6} | "
              f"{'frames lost':>11} {'Janus':>6} | {'upload Mbit/s relay':>19} {'mesh':>5} | "
              f"{'join→frame ms med/p95':>21} {'Janus':>11} | {'PLI→key ms med/max':>18} {'Janus':>9} | {'load %':>6}")
    print(header)
    for row in rows:
        v, j, m = row["vcall"], row["janus"], row["mesh"]
        load = max((x["participants_cpu_percent"] or 0) + (x["cpu_percent"] or 0) for x in (v, j))
        print(f"{row['profile']:>6} {row['participants']:>2} {v['forwarded_streams']:>3} | {fmt(v['cpu_percent_per_stream']):>12} {fmt(j['cpu_percent_per_stream']):>6} | "
              f"{fmt(v['rss_per_stream_mib']):>14} {fmt(j['rss_per_stream_mib']):>6} | "
              f"{v['frames_lost']:>11} {j['frames_lost']:>6} | {v['upload_mbps']:>19.2f} {m['upload_mbps']:>5.2f} | "
              f"{fmt(v['join_ms_median'], '.0f') + '/' + fmt(v['join_ms_p95'], '.0f'):>21} "
              f"{fmt(j['join_ms_median'], '.0f') + '/' + fmt(j['join_ms_p95'], '.0f'):>11} | "
              f"{fmt(v['pli_ms_median'], '.0f') + '/' + fmt(v['pli_ms_max'], '.0f'):>18} "
              f"{fmt(j['pli_ms_median'], '.0f') + '/' + fmt(j['pli_ms_max'], '.0f'):>9} | {load:>6.0f}")
    print("load %: the busier run's hub + participants' process CPU, of the machine's "
          f"{__import__('os').cpu_count()} cores × 100; near it, frames are lost to the machine")
    write_results("relay", {"rows": rows, "seconds": options.seconds})


if __name__ == "__main__":
    main()
