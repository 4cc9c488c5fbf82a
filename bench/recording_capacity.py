#!/usr/bin/env python3
"""How many participants one gateway records on this machine: for N = 1, 5, 10, 20, 40, … a recorder
gateway records N participants sent by `vcall-bench senders` (one process, one shared encoded-once
1280x720 VP8 ~1.5 Mbit/s + Opus stream, so the senders do not re-encode per participant), through a
separate vcall-server. Per N: the recorder's CPU per recorded participant (cpu-seconds per
media-second), RSS per participant over its idle RSS, and frames in the files against frames sent.
Stops after the first N that loses frames; reports the largest N with none lost.

    swift build -c release
    scripts/netns-run .venv/bin/python bench/recording_capacity.py --counts 1,5,10,20,40 --seconds 30

Prints a table, writes bench/results/recording_capacity.json and, with matplotlib, a PNG of CPU and
RSS against N next to it.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from datetime import datetime
from pathlib import Path

from av_offset import offsets_ms, summary
from gateway_recording import REPO, Process, free_port, write_results


def final_reports(record: Path) -> dict[str, dict]:
    """The reports of the recordings that have ended, by display name (a recording writes a provisional
    report, "not finalized", as it starts)."""
    reports = {}
    for path in record.glob("*.json"):
        report = json.loads(path.read_text())
        if not (report.get("error") or "").startswith("not finalized"):
            reports[report["displayName"]] = report
    return reports


def run(bins: Path, count: int, seconds: float, work: Path, env: dict[str, str] | None = None,
        recorder_args: tuple[str, ...] = (), label: str = "") -> dict:
    """One N; `env` is added to the environment of the recorder and the senders, `recorder_args` to the
    recorder's command line. The recordings stay in the returned row's `record` folder."""
    port = free_port()
    record = work / f"rec-{count}{label}"
    server = Process(bins / "vcall-server", f"cap-server-{count}", ["--host", "127.0.0.1", "--port", str(port),
                                                                    "--data-dir", str(work / f"data-{count}"),
                                                                    "--room-capacity", str(count + 1)], work)
    recorder = senders = None
    try:
        server.wait_for(r"Server started|listening", 30)
        recorder = Process(bins / "vcall-gateway", f"cap-recorder-{count}", [
            "--room", "capacity", "--name", "recorder", "--server", f"ws://127.0.0.1:{port}/ws",
            "--record", str(record), "--video", "none", "--audio", "none", *recorder_args], work, env)
        recorder.wait_for(r"joining room", 30)
        time.sleep(2)
        idle_rss, _ = recorder.memory_mb()
        result_file = work / f"senders-{count}.json"
        senders = Process(bins / "vcall-bench", f"cap-senders-{count}", [
            "senders", "--server", f"ws://127.0.0.1:{port}/ws", "--room", "capacity", "--count", str(count),
            "--seconds", str(seconds), "--json", str(result_file)], work, env)
        senders.wait_for(r"senders: \d+ of \d+ connected", 180)
        time.sleep(5)  # every recording has started and settled
        cpu_before, start = recorder.cpu_seconds(), time.monotonic()
        time.sleep(max(5.0, seconds - 10))
        elapsed = time.monotonic() - start
        cpu = (recorder.cpu_seconds() - cpu_before) / elapsed
        rss, peak = recorder.memory_mb()
        senders.process.wait(timeout=seconds + 120)
        sent = json.loads(result_file.read_text())
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(set(final_reports(record)) & set(sent["videoFramesSent"])) < count:
            time.sleep(0.2)
        reports = final_reports(record)
        lost = 0
        for name, frames in sent["videoFramesSent"].items():
            recorded = reports.get(name, {}).get("videoFrames", 0)
            lost += max(0, frames - recorded)
        total_sent = sum(sent["videoFramesSent"].values())
        return {"participants": count, "connected": sent["connected"], "files": len(set(reports) & set(sent["videoFramesSent"])),
                "record": str(record), "sent_seconds": seconds,
                "cpu_core_fraction": cpu, "cpu_per_participant": cpu / count,
                "rss_mb": rss, "idle_rss_mb": idle_rss, "peak_rss_mb": peak, "rss_per_participant_mb": (peak - idle_rss) / count,
                "frames_sent": total_sent, "frames_lost": lost,
                "lost_fraction": lost / total_sent if total_sent else 1.0,
                "av_offset": summary([o for f in record.glob("*.webm") if "-composite-" not in f.name for o in offsets_ms(f)])}
    finally:
        for process in (senders, recorder, server):
            if process:
                process.stop()


def options_for(doc: str, counts: str) -> argparse.Namespace:
    """The command line of a benchmark built on `run`: --counts, --seconds, --keep, --bin-dir (checked)."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("--counts", default=counts)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--keep", action="store_true", help="keep the recordings and logs (printed folder)")
    parser.add_argument("--bin-dir", type=Path, default=REPO / ".build" / "release")
    options = parser.parse_args()
    for name in ("vcall-gateway", "vcall-server", "vcall-bench"):
        if not (options.bin_dir / name).exists():
            raise SystemExit(f"{options.bin_dir / name} not found: swift build -c release --product {name}")
    return options


def main() -> None:
    options = options_for(__doc__, "1,5,10,20,40,60")
    work = Path(tempfile.mkdtemp(prefix="vcall-capacity-"))
    rows = []
    try:
        for count in (int(c) for c in options.counts.split(",")):
            row = run(options.bin_dir, count, options.seconds, work)
            rows.append(row)
            print(f"N={count}: {row['cpu_core_fraction'] * 100:.1f} % of a core, {row['peak_rss_mb']:.0f} MB, "
                  f"{row['frames_lost']} of {row['frames_sent']} frames lost", flush=True)
            if row["frames_lost"] > 0 or row["files"] < count:
                break
    finally:
        if not options.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"kept {work}")
    clean = [r["participants"] for r in rows if r["frames_lost"] == 0 and r["files"] == r["participants"]]
    print(f"\nrecording capacity, {datetime.now().isoformat(timespec='seconds')} (targets: ≤ 1.5 % of a core and ≤ 15 MB per participant, ≥ 40 with no loss)")
    print(f"{'N':>4} {'files':>6} {'CPU % core':>11} {'per N':>7} {'RSS MB':>7} {'MB per N':>9} {'frames sent':>12} {'lost':>6}")
    for r in rows:
        print(f"{r['participants']:>4} {r['files']:>6} {r['cpu_core_fraction'] * 100:>11.1f} {r['cpu_per_participant'] * 100:>7.2f} "
              f"{r['peak_rss_mb']:>7.1f} {r['rss_per_participant_mb']:>9.2f} {r['frames_sent']:>12} {r['frames_lost']:>6}")
    print(f"largest N with zero frames lost: {max(clean) if clean else 'none'}")
    results = write_results("recording_capacity", {"rows": rows,
         "largest_lossless": max(clean) if clean else None})
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        n = [r["participants"] for r in rows]
        figure, (cpu_axis, rss_axis) = plt.subplots(1, 2, figsize=(9, 3.5))
        cpu_axis.plot(n, [r["cpu_core_fraction"] * 100 for r in rows], marker="o")
        cpu_axis.set(xlabel="participants recorded", ylabel="% of one core", title="recorder CPU")
        rss_axis.plot(n, [r["peak_rss_mb"] for r in rows], marker="o")
        rss_axis.set(xlabel="participants recorded", ylabel="MB", title="recorder RSS")
        figure.tight_layout()
        figure.savefig(results / "recording_capacity.png", dpi=100)
    except ImportError:
        print("(matplotlib not installed: no plot)")


if __name__ == "__main__":
    main()
