#!/usr/bin/env python3
"""Call setup with a browser: Chromium joins a room where a host already is, and the time from its join
(the server's room-joined) to ICE connected and to the first decoded frame of the host's video is
taken inside the page. Host = vcall-gateway (sending its test source and recording the guest: join →
first keyframe written, from the gateway's log); baseline in the same run = another Chromium page.
One vcall-server (release) serves both; each guest is a fresh page in a fresh context.

    swift build -c release
    scripts/netns-run .venv/bin/python bench/call_setup_browser.py --calls 20

Prints a table and writes bench/results/call_setup_browser.json.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

from gateway_recording import REPO, Process, clock, free_port, percentile, write_results

sys.path.insert(0, str(REPO / "tests" / "app"))
from app_harness import CHROMIUM, CHROMIUM_ARGS  # noqa: E402
from app_helpers import join, new_room_id  # noqa: E402

from playwright.sync_api import sync_playwright  # noqa: E402

# Timestamps from inside the page (performance.now()): the first peer connection that reaches
# 'connected', and the first video frame presented from a remote track (requestVideoFrameCallback).
TIMING_SCRIPT = """
window.__setup = { connected: null, firstFrame: null };
const NativePeerConnection = window.RTCPeerConnection;
window.RTCPeerConnection = function (...args) {
  const pc = new NativePeerConnection(...args);
  pc.addEventListener('connectionstatechange', () => {
    if (pc.connectionState === 'connected' && window.__setup.connected === null) window.__setup.connected = performance.now();
  });
  pc.addEventListener('track', (event) => {
    if (event.track.kind !== 'video') return;
    const video = document.createElement('video');
    video.muted = true;
    video.srcObject = new MediaStream([event.track]);
    video.requestVideoFrameCallback(() => {
      if (window.__setup.firstFrame === null) window.__setup.firstFrame = performance.now();
    });
    video.play().catch(() => {});
  });
  return pc;
};
window.RTCPeerConnection.prototype = NativePeerConnection.prototype;
"""


def guest_call(browser, base_url: str, room: str, name: str, while_in_call=None, timeout: float = 20.0) -> dict:
    context = browser.new_context(base_url=base_url)
    context.add_init_script(TIMING_SCRIPT)
    page = context.new_page()
    try:
        join(page, room, name)
        page.wait_for_function("() => window.__setup.firstFrame !== null && window.__setup.connected !== null",
                               timeout=timeout * 1000)
        times = page.evaluate("() => ({ joined: window.vcall.joinedAt, ...window.__setup })")
        row = {"connected_ms": times["connected"] - times["joined"], "first_frame_ms": times["firstFrame"] - times["joined"]}
        if while_in_call:
            row.update(while_in_call(name))
        return row
    finally:
        context.close()


def summarize(values: list[float]) -> dict:
    return {"median": statistics.median(values), "p95": percentile(values, 0.95), "n": len(values)} if values else {}


def run_scenario(browser, base_url: str, calls: int, host_joins, host_ready, while_in_call=None) -> list[dict]:
    room = new_room_id()
    host = host_joins(room)
    host_ready(host)
    rows = []
    for index in range(calls):
        rows.append(guest_call(browser, base_url, room, f"guest{index}",
                               (lambda name: while_in_call(host, name)) if while_in_call else None))
        time.sleep(0.5)  # the host sees the guest leave before the next joins
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=20)
    parser.add_argument("--bin-dir", type=Path, default=REPO / ".build" / "release")
    options = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="vcall-setup-browser-"))
    port = free_port()
    server = Process(options.bin_dir / "vcall-server", "setup-server",
                     ["--host", "127.0.0.1", "--port", str(port), "--data-dir", str(work / "data")], work)
    server.wait_for(r"Server started|listening", 30)
    base_url = f"http://127.0.0.1:{port}"
    results = {}
    gateways = []  # stopped whatever happens
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            try:
                host_pages = []

                def browser_host(room):
                    context = browser.new_context(base_url=base_url)
                    page = context.new_page()
                    host_pages.append(context)
                    join(page, room, "host")
                    return page

                baseline = run_scenario(browser, base_url, options.calls, browser_host, lambda page: None)
                for context in host_pages:
                    context.close()
                results["chromium ↔ chromium"] = baseline

                def gateway_host(room):
                    gateways.append(Process(options.bin_dir / "vcall-gateway", "setup-gateway",
                                            ["--room", room, "--name", "host", "--server", f"ws://127.0.0.1:{port}/ws",
                                             "--record", str(work / "rec")], work))
                    return gateways[-1]

                def gateway_ready(process):
                    process.wait_for(r"joining room", 30)
                    time.sleep(1)

                def recorded(process, name):
                    joined = process.wait_for(rf"(\d\d:\d\d:\d\d\.\d+) info {name} \(\w+\) is in the call", 10)
                    written = process.wait_for(rf"(\d\d:\d\d:\d\d\.\d+) info first frames of {name} written", 10)
                    return {"recorded_keyframe_ms": (clock(written.group(1)) - clock(joined.group(1))) * 1000}

                rows = run_scenario(browser, base_url, options.calls, gateway_host, gateway_ready, recorded)
                results["chromium ↔ gateway"] = rows
            finally:
                browser.close()
    finally:
        for gateway in gateways:
            gateway.stop()
        server.stop()
    summary = {scenario: {key: summarize([row[key] for row in rows if key in row])
                          for key in ("connected_ms", "first_frame_ms", "recorded_keyframe_ms")}
               for scenario, rows in results.items()}
    base = summary["chromium ↔ chromium"]
    print(f"\ncall setup with a browser, {datetime.now().isoformat(timespec='seconds')}: {options.calls} calls each; "
          "from the guest's join (room-joined) in Chromium")
    print(f"{'':22} {'→ ICE connected':>22} {'→ first decoded frame':>24} {'→ first keyframe recorded':>26}")
    print(f"{'':22} {'median / p95 ms':>22} {'median / p95 ms':>24} {'(gateway log) median / p95':>26}")
    for scenario, figures in summary.items():
        cells = []
        for key, width in (("connected_ms", 22), ("first_frame_ms", 24), ("recorded_keyframe_ms", 26)):
            value = figures[key]
            cells.append(f"{value['median']:.0f} / {value['p95']:.0f}".rjust(width) if value else "–".rjust(width))
        print(f"{scenario:22} {' '.join(cells)}")
    ratio = summary["chromium ↔ gateway"]["first_frame_ms"]["median"] / base["first_frame_ms"]["median"]
    print(f"ratio gateway / chromium host, first frame median: {ratio:.2f} (target ≤ 1.0: no slower than Chromium ↔ Chromium)")
    write_results("call_setup_browser", {"calls": options.calls, "summary": summary,
         "first_frame_ratio": ratio, "rows": results})


if __name__ == "__main__":
    main()
