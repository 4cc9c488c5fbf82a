#!/usr/bin/env python3
"""What the composite recording costs: for N = 2, 4, 6, 9 participants (`vcall-bench senders`: one
process, one shared encoded-once 1280x720 VP8 ~1.5 Mbit/s + Opus stream that flashes and beeps each
second) a recorder gateway records the call twice, without and with --composite (1280x720, 30 fps). Per N:

- the composite's CPU: the recorder's CPU with --composite minus without (the per-participant files, the
  call's own work), in % of one core;
- the recorder's peak RSS with the composite, and its growth over the run without;
- composite frames dropped (from its report) and frames in it against 30 fps over its duration;
- the A/V offset in the composite file: flash onsets in the first participant's cell against beep onsets
  in the mixed audio (every sender flashes and beeps at the same instant);
- the floor: a bare gst-launch-1.0 pipeline compositing N live raw test pictures (made at their cell's
  size: nothing to decode or scale) into the same grid and encoding it with the same VP8 settings, over
  the same time; what the live call adds over compositing itself (decoding, scaling, labels, name tiles,
  the gates) is the first figure minus this one.

    swift build -c release
    scripts/netns-run .venv/bin/python bench/composite.py --counts 2,4,6,9 --seconds 30

Prints a table and writes bench/results/composite.json.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from av_offset import offsets_ms, summary
from gateway_recording import TICKS, write_results
from recording_capacity import options_for, run

WIDTH, HEIGHT, FPS = 1280, 720, 30
GOAL_CORE = 1.0
# The composite's colour space (CompositeRecorder.pictureCaps): nothing to convert.
COLOUR = "colorimetry=bt709,chroma-site=mpeg2"


def grid(count: int) -> list[tuple[int, int, int, int]]:
    """The composite's grid for `count` 16:9 pictures (Gateway/Recording/CompositeLayout.swift): x, y, width,
    height of each picture, a short last row centred."""
    columns = math.ceil(math.sqrt(count))
    rows = math.ceil(count / columns)
    cell_w, cell_h = (WIDTH // columns) & ~1, (HEIGHT // rows) & ~1
    top = (HEIGHT - cell_h * rows) // 2
    pictures = []
    for index in range(count):
        row = index // columns
        in_row = count - columns * (rows - 1) if row == rows - 1 else columns
        left = (WIDTH - cell_w * in_row) // 2
        x, y = (left + (index % columns) * cell_w) & ~1, (top + row * cell_h) & ~1
        w, h = (cell_w, (round(cell_w * 9 / 16)) & ~1) if cell_w / cell_h < 16 / 9 else ((round(cell_h * 16 / 9)) & ~1, cell_h)
        pictures.append((x + (cell_w - w) // 2 & ~1, y + (cell_h - h) // 2 & ~1, w, h))
    return pictures


def floor_cpu(count: int, seconds: float) -> float:
    """CPU (fraction of a core) of gst-launch-1.0 compositing `count` decoded live test streams into the
    composite's grid and encoding it as the gateway does (CompositeRecorder's vp8enc settings)."""
    # Raw pictures made at their cell's size: the floor is compositing and encoding alone.
    sources = [f"videotestsrc is-live=true pattern=ball ! video/x-raw,format=I420,width={w},height={h},framerate={FPS}/1,{COLOUR} "
               f"! mix.sink_{index}"
               for index, (x, y, w, h) in enumerate(grid(count))]
    pads = " ".join(f"sink_{i}::xpos={x} sink_{i}::ypos={y} sink_{i}::width={w} sink_{i}::height={h}"
                    for i, (x, y, w, h) in enumerate(grid(count)))
    description = (f"compositor name=mix background=black start-time-selection=first {pads} "
                   f"! video/x-raw,format=I420,width={WIDTH},height={HEIGHT},framerate={FPS}/1,{COLOUR} "
                   "! queue leaky=downstream max-size-buffers=3 "
                   "! vp8enc deadline=1 cpu-used=8 end-usage=vbr target-bitrate=2500000 keyframe-max-dist=60 lag-in-frames=0 threads=1 "
                   "! fakesink sync=false " + " ".join(sources))
    process = subprocess.Popen(["gst-launch-1.0", "-q", *description.split()], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        time.sleep(3)
        if process.poll() is not None:
            raise RuntimeError(f"the floor pipeline stopped: {process.stderr.read().decode()[-2000:]}")
        before, start = cpu_seconds(process.pid), time.monotonic()
        time.sleep(seconds)
        return (cpu_seconds(process.pid) - before) / (time.monotonic() - start)
    finally:
        process.terminate()
        process.wait(timeout=10)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def first_cell_crop(count: int) -> str:
    """The first participant's picture (ffmpeg crop W:H:X:Y): its mean luma jumps with their white flash
    frame, whatever the rest of the picture does."""
    x, y, w, h = grid(count)[0]
    return f"{w}:{h}:{x}:{y}"


def main() -> None:
    options = options_for(__doc__, "2,4,6,9")
    work = Path(tempfile.mkdtemp(prefix="vcall-composite-bench-"))
    rows = []
    try:
        for count in (int(c) for c in options.counts.split(",")):
            plain = run(options.bin_dir, count, options.seconds, work, label="-plain")
            try:
                composite = run(options.bin_dir, count, options.seconds, work, recorder_args=("--composite",), label="-composite")
            except (AttributeError, RuntimeError, OSError) as error:
                # The recorder died (its /proc entry went): say so and go on with the next size.
                print(f"N={count}: the recorder with --composite stopped during the run ({error!r}); see its log", flush=True)
                rows.append({"participants": count, "failed": True})
                continue
            [report_path] = [p for p in Path(composite["record"]).glob("*-composite-*.json")
                             if not json.loads(p.read_text()).get("error")]
            report = json.loads(report_path.read_text())
            offsets = offsets_ms(report_path.with_suffix(".webm"), crop=first_cell_crop(count))
            floor = floor_cpu(count, max(5.0, options.seconds - 10))
            row = {"participants": count,
                   "composite_cpu": composite["cpu_core_fraction"] - plain["cpu_core_fraction"],
                   "recorder_cpu_plain": plain["cpu_core_fraction"], "recorder_cpu_composite": composite["cpu_core_fraction"],
                   "floor_cpu": floor,
                   "peak_rss_mb": composite["peak_rss_mb"], "rss_over_plain_mb": composite["peak_rss_mb"] - plain["peak_rss_mb"],
                   "composite_frames": report["videoFrames"], "composite_dropped": report["framesDropped"],
                   "composite_seconds": report["duration"],
                   "participant_frames_lost": composite["frames_lost"], "participant_frames_lost_plain": plain["frames_lost"],
                   "av_offset": summary(offsets)}
            rows.append(row)
            print(f"N={count}: composite {row['composite_cpu'] * 100:.0f} % of a core (floor {floor * 100:.0f} %), "
                  f"{row['composite_dropped']} of {row['composite_frames'] + row['composite_dropped']} frames dropped, "
                  f"A/V {row['av_offset']}", flush=True)
    finally:
        if not options.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"kept {work}")
    print(f"\ncomposite recording, 1280x720 at 30 fps (goal: 9 inputs in ≤ {GOAL_CORE:.0f} core, 0 frames dropped)")
    print(f"{'N':>3} {'composite % core':>17} {'floor % core':>13} {'call adds':>10} {'peak RSS MB':>12} {'+MB':>6} "
          f"{'frames':>7} {'dropped':>8} {'A/V median ms':>14} {'max |ms|':>9}")
    for r in rows:
        if r.get("failed"):
            print(f"{r['participants']:>3}  the recorder stopped during the run")
            continue
        av = r["av_offset"] or {}
        print(f"{r['participants']:>3} {r['composite_cpu'] * 100:>17.0f} {r['floor_cpu'] * 100:>13.0f} "
              f"{(r['composite_cpu'] - r['floor_cpu']) * 100:>10.0f} {r['peak_rss_mb']:>12.0f} {r['rss_over_plain_mb']:>6.0f} "
              f"{r['composite_frames']:>7} {r['composite_dropped']:>8} {av.get('median_ms', float('nan')):>14.1f} "
              f"{av.get('max_abs_ms', float('nan')):>9.1f}")
    write_results("composite", {"rows": rows, "seconds": options.seconds})


if __name__ == "__main__":
    main()
