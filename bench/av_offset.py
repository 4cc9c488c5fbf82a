"""A/V offset in a recording made from `vcall-bench senders` media, which flashes (a white frame) and
beeps (1 kHz) at the same instant each second (see Sources/vcall-bench/SyncMarks.swift).

Flash onsets come from ffmpeg's signalstats (mean luma per frame), beep onsets from silencedetect (to
the sample), both on the file's own timestamps (-copyts). offset = beep − flash: positive when the
sound comes late.
"""

from __future__ import annotations

import re
import statistics
import subprocess
from pathlib import Path


def flash_times(path: Path, crop: str | None = None) -> list[float]:
    """Flash onsets; `crop` (ffmpeg's W:H:X:Y) looks at one part of the picture only (one cell of a composite)."""
    filters = (f"crop={crop}," if crop else "") + "signalstats,metadata=print:key=lavfi.signalstats.YAVG"
    out = subprocess.run(["ffmpeg", "-v", "info", "-nostats", "-copyts", "-i", str(path), "-map", "0:v:0", "-vf",
                          filters, "-f", "null", "-"],
                         capture_output=True, text=True, timeout=300).stderr
    frames = []
    time = None
    for line in out.splitlines():
        if match := re.search(r"pts_time:([\d.]+)", line):
            time = float(match.group(1))
        elif (match := re.search(r"YAVG=([\d.]+)", line)) and time is not None:
            frames.append((time, float(match.group(1))))
            time = None
    if not frames:
        return []
    typical = statistics.median(luma for _, luma in frames)
    threshold = (typical + 235) / 2
    onsets, previous = [], 0.0
    for time, luma in frames:
        if luma > threshold >= previous:
            onsets.append(time)
        previous = luma
    return onsets


def beep_times(path: Path) -> list[float]:
    out = subprocess.run(["ffmpeg", "-v", "info", "-nostats", "-copyts", "-i", str(path), "-map", "0:a:0", "-af",
                          "silencedetect=noise=-30dB:d=0.2", "-f", "null", "-"],
                         capture_output=True, text=True, timeout=300).stderr
    return [float(t) for t in re.findall(r"silence_end: ([\d.]+)", out)]


def offsets_ms(path: Path, crop: str | None = None) -> list[float]:
    """beep − flash for each flash with a beep within half a second of it, in milliseconds."""
    beeps = beep_times(path)
    result = []
    for flash in flash_times(path, crop):
        nearest = min(beeps, key=lambda beep: abs(beep - flash), default=None)
        if nearest is not None and abs(nearest - flash) < 0.5:
            result.append((nearest - flash) * 1000)
    return result


def summary(offsets: list[float]) -> dict:
    if not offsets:
        return {"marks": 0}
    return {"marks": len(offsets), "median_ms": statistics.median(offsets),
            "min_ms": min(offsets), "max_ms": max(offsets),
            "max_abs_ms": max(abs(o) for o in offsets)}
