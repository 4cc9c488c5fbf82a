#!/usr/bin/env python3
"""A/V sync in a recording: `vcall-bench senders` flashes a white frame and starts a 1 kHz beep at the
same instant each second, painted into the raw media before the encoders; a recorder gateway records
it through vcall-server; the offset between each beep and its flash is read back from the WebM with
ffmpeg. The marks are painted at the same timestamp, so the source's offset is 0 ms. Baseline in the same
run: the same call with GStreamer's default sender reports (RTP time mapped to send time), which vcall
replaces with capture time.

    swift build -c release
    scripts/netns-run .venv/bin/python bench/av_sync.py --seconds 30

Prints a table and writes bench/results/av_sync.json.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from datetime import datetime
from pathlib import Path

from av_offset import offsets_ms, summary
from gateway_recording import REPO, write_results
from recording_capacity import run

TARGET_MS = 20.0


def measure(options, env: dict[str, str], label: str) -> tuple[dict[str, list[float]], dict, list[Path]]:
    work = Path(tempfile.mkdtemp(prefix=f"vcall-avsync-{label}-"))
    try:
        row = run(options.bin_dir, options.participants, options.seconds, work, env)
        files = sorted((work / f"rec-{options.participants}").glob("*.webm"))
        return {f.name: offsets_ms(f) for f in files}, row, files
    finally:
        if options.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--participants", type=int, default=1, help="senders recorded at once")
    parser.add_argument("--keep", action="store_true", help="keep the recordings and logs (printed folder)")
    parser.add_argument("--bin-dir", type=Path, default=REPO / ".build" / "release")
    options = parser.parse_args()
    # Baseline in the same run: the same call with GStreamer's default sender reports (RTP time mapped to
    # send time, VCALL_SEND_TIME_SR=1) instead of vcall's (capture time).
    baseline_files, _, _ = measure(options, {"VCALL_SEND_TIME_SR": "1"}, "send-time")
    per_file, row, files = measure(options, {}, "capture-time")
    offsets = [o for values in per_file.values() for o in values]
    result = summary(offsets)
    baseline = summary([o for values in baseline_files.values() for o in values])
    met = bool(offsets) and result["max_abs_ms"] <= TARGET_MS
    print(f"\nA/V sync, {datetime.now().isoformat(timespec='seconds')}: {len(files)} recording(s), "
          f"{options.seconds:.0f} s each; offset = beep − flash in the file (positive: sound late)")
    print(f"{'':24} {'marks':>6} {'median ms':>10} {'min ms':>8} {'max ms':>8}   target")
    print(f"{'source (painted)':24} {result.get('marks', 0):>6} {0.0:>10.1f} {0.0:>8.1f} {0.0:>8.1f}")
    if baseline.get("marks"):
        print(f"{'SRs by send time':24} {baseline['marks']:>6} {baseline['median_ms']:>10.1f} {baseline['min_ms']:>8.1f} "
              f"{baseline['max_ms']:>8.1f}   (GStreamer's default, for comparison)")
    if offsets:
        print(f"{'SRs by capture time':24} {result['marks']:>6} {result['median_ms']:>10.1f} {result['min_ms']:>8.1f} "
              f"{result['max_ms']:>8.1f}   |offset| ≤ {TARGET_MS:.0f} ms: {'met' if met else 'NOT met'}")
    else:
        print("no flash/beep pairs found in the recording")
    write_results("av_sync", {"seconds": options.seconds,
         "participants": options.participants, "target_ms": TARGET_MS, "met": met, **result, "send_time_baseline": baseline,
         "offsets_ms": per_file, "frames_sent": row["frames_sent"], "frames_lost": row["frames_lost"]})
    if not met:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
