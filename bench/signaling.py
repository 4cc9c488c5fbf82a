#!/usr/bin/env python3
"""Signaling relay throughput and latency: vcall-server against a minimal Node.js + `ws` relay, same run.

`vcall-bench signaling` opens 1,000 WebSocket clients in 500 rooms of two; each client relays offer-sized
(~4 KB SDP), answer-sized (~3 KB) and candidate-sized (~250 B) messages to its room peer through the server,
closed loop (at most --in-flight unreceived messages per client, so both servers run at saturation without
unbounded queues). After a warm-up it measures, over --seconds, the relayed messages received per second
and the relay latency (sender's timestamp to receipt, one monotonic clock), checking every message's
`from`, type, sender and order. The same generator then drives bench/node_relay.js (Node.js and the `ws`
package, Debian's nodejs and node-ws), the stack the plain-WebSocket calling apps use.

Target (issue 5, scenario 6): vcall-server relays ≥ 2× the Node relay's messages per second, with a lower p99.

    swift build -c release --product vcall-server && swift build -c release --product vcall-bench
    .venv/bin/python bench/signaling.py [--seconds 10] [--rounds 1] [--bin-dir .build/release]

Prints a table (figure, target, ratio vcall/node) and writes bench/results/signaling.json. Each server's
CPU (from /proc, over the measured window) and peak RSS are reported next to its figures. vcall-server runs
with a temporary data folder and its per-connection rate limit raised (--rate-limit/--rate-burst): the
default of 50 messages/s per connection would otherwise cap the load at 50 × clients.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import statistics
import tempfile
import time
from datetime import datetime
from pathlib import Path

from gateway_recording import REPO, Process, free_port, write_results


def measure(name: str, server: Process, bins: Path, url: str, options: argparse.Namespace, work: Path, round_: int) -> dict:
    """Runs the generator against a started server; samples the server's CPU over the measured window."""
    result_file = work / f"{name}-{round_}.json"
    generator = Process(bins / "vcall-bench", f"generator-{name}-{round_}", [
        "signaling", "--url", url, "--clients", str(options.clients), "--in-flight", str(options.in_flight),
        "--warmup", str(options.warmup), "--seconds", str(options.seconds), "--label", name,
        *(["--threads", str(options.threads)] if options.threads else []),
        "--json", str(result_file)], work)
    try:
        generator.wait_for(r"measuring", options.setup_timeout + options.warmup + 30)
        cpu_before, start = server.cpu_seconds(), time.monotonic()
        generator.wait_for(r"measured", options.seconds + 30)
        server_cores = (server.cpu_seconds() - cpu_before) / (time.monotonic() - start)
        _, peak_rss = server.memory_mb()
        generator.process.wait(timeout=60)
    finally:
        generator.stop()
    if not result_file.exists():
        raise RuntimeError(f"generator against {name} wrote no result:\n{generator.text()[-3000:]}")
    result = json.loads(result_file.read_text())
    result["server_cores"] = server_cores
    result["server_peak_rss_mb"] = peak_rss
    result["messages_per_cpu_second"] = result["messagesPerSecond"] / server_cores if server_cores > 0 else None
    for line in generator.text().splitlines():
        if "messages/s" in line or "paired" in line or "server error" in line:
            print(line, flush=True)
    return result


def relay_command(label: str, bins: Path, options: argparse.Namespace, work: Path, round_: int, port: int) -> tuple[Path, list[str]]:
    """The server under test: vcall-server (rate limits lifted), the Node.js ws relay, or the generator's
    ceiling, a relay that forwards without parsing (vcall-bench signaling-trivial-relay)."""
    if label == "vcall" or label in options.extra_servers:
        binary = options.extra_servers.get(label, bins / "vcall-server")
        return binary, ["--host", "127.0.0.1", "--port", str(port), "--data-dir", str(work / f"data-{round_}"),
                                       "--rate-limit", "1000000000", "--rate-burst", "1000000000", "--log-level", "warning"]
    if label == "node":
        return Path(options.node), [str(REPO / "bench" / "node_relay.js"), "--port", str(port)]
    return bins / "vcall-bench", ["signaling-trivial-relay", "--port", str(port)]


def run_relay(label: str, bins: Path, options: argparse.Namespace, work: Path, round_: int) -> dict:
    """Starts one server, drives it with the generator, stops it."""
    port = free_port()
    binary, args = relay_command(label, bins, options, work, round_, port)
    server = Process(binary, f"{label}-relay-{round_}", args, work)
    try:
        server.wait_for(r"listening on", 30)
        return measure(label, server, bins, f"ws://127.0.0.1:{port}/ws", options, work, round_)
    finally:
        server.stop()


def median(rows: list[dict], key) -> float:
    values = [key(r) for r in rows if key(r) is not None]
    return statistics.median(values) if values else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--in-flight", type=int, default=2, help="messages a client may have unreceived (closed loop)")
    parser.add_argument("--warmup", type=float, default=3)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--rounds", type=int, default=1, help="alternate vcall and node this many times; figures are medians")
    parser.add_argument("--threads", type=int, default=0, help="generator event loop threads (default: one per core)")
    parser.add_argument("--setup-timeout", type=float, default=60)
    parser.add_argument("--node", default=shutil.which("node") or shutil.which("nodejs") or "node")
    parser.add_argument("--no-ceiling", action="store_true",
                        help="skip the generator's ceiling (the same load against a trivial relay that parses nothing)")
    parser.add_argument("--keep", action="store_true", help="keep the logs (printed folder)")
    parser.add_argument("--extra-server", action="append", default=[], metavar="NAME=PATH",
                        help="also measure another vcall-server binary (e.g. before=/tmp/vcall-server-before) in every "
                             "round, with the same flags; its figures are printed after the table")
    parser.add_argument("--bin-dir", type=Path, default=REPO / ".build" / "release")
    options = parser.parse_args()
    options.extra_servers = {}
    for spec in options.extra_server:
        name, _, path = spec.partition("=")
        if not path or name in ("vcall", "node", "trivial") or not Path(path).exists():
            raise SystemExit(f"--extra-server {spec}: give NAME=PATH of an existing vcall-server (NAME not vcall, node or trivial)")
        options.extra_servers[name] = Path(path)
    for name in ("vcall-server", "vcall-bench"):
        if not (options.bin_dir / name).exists():
            raise SystemExit(f"{options.bin_dir / name} not found: swift build -c release --product {name}")
    if not Path(options.node).exists() and not shutil.which(options.node):
        raise SystemExit("node not found: scripts/setup installs nodejs and node-ws")
    # Each side holds a socket per client, plus a few.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = options.clients * 2 + 256
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(wanted, soft)) if hard != resource.RLIM_INFINITY else wanted, hard))
    if resource.getrlimit(resource.RLIMIT_NOFILE)[0] < wanted:
        raise SystemExit(f"open files limit {resource.getrlimit(resource.RLIMIT_NOFILE)[0]} < {wanted}: raise ulimit -n")

    work = Path(tempfile.mkdtemp(prefix="vcall-signaling-"))
    vcall_rows, node_rows, trivial_rows = [], [], []
    extra_rows = {name: [] for name in options.extra_servers}
    try:
        for round_ in range(options.rounds):
            for name, rows in extra_rows.items():
                rows.append(run_relay(name, options.bin_dir, options, work, round_))
            vcall_rows.append(run_relay("vcall", options.bin_dir, options, work, round_))
            node_rows.append(run_relay("node", options.bin_dir, options, work, round_))
            if not options.no_ceiling:
                trivial_rows.append(run_relay("trivial", options.bin_dir, options, work, round_))
    finally:
        if options.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)

    figures = [
        # name, key, format, target text or None, which direction is better for the ratio's verdict
        ("messages relayed /s", lambda r: r["messagesPerSecond"], "{:.0f}"),
        ("latency p50 ms", lambda r: r["latencyMilliseconds"]["p50"], "{:.2f}"),
        ("latency p99 ms", lambda r: r["latencyMilliseconds"]["p99"], "{:.2f}"),
        ("latency max ms", lambda r: r["latencyMilliseconds"]["max"], "{:.2f}"),
        ("server CPU, cores", lambda r: r["server_cores"], "{:.2f}"),
        ("messages per CPU-second", lambda r: r["messages_per_cpu_second"], "{:.0f}"),
        ("server peak RSS MB", lambda r: r["server_peak_rss_mb"], "{:.1f}"),
        ("generator CPU, cores", lambda r: r["generatorCores"], "{:.2f}"),
        ("MB/s relayed", lambda r: r["megabytesPerSecond"], "{:.1f}"),
    ]
    vcall = {name: median(vcall_rows, key) for name, key, _ in figures}
    node = {name: median(node_rows, key) for name, key, _ in figures}
    trivial = {name: median(trivial_rows, key) for name, key, _ in figures} if trivial_rows else None
    targets = {
        "messages relayed /s": (f"≥ {2 * node['messages relayed /s']:.0f} (2× node)",
                                vcall["messages relayed /s"] >= 2 * node["messages relayed /s"]),
        "latency p99 ms": (f"< {node['latency p99 ms']:.2f} (node's)", vcall["latency p99 ms"] < node["latency p99 ms"]),
    }
    errors = {
        label: {"undelivered": sum(r["undelivered"] for r in rows),
                "wrong": sum(r["wrongFrom"] + r["wrongType"] + r["outOfOrder"] + r["truncated"] for r in rows),
                "server_errors": sum(sum(r["serverErrors"].values()) for r in rows),
                "failures": sum(sum(r["failures"].values()) for r in rows),
                "rooms_running": min(r["roomsRunning"] for r in rows)}
        for label, rows in (("vcall", vcall_rows), ("node", node_rows), ("trivial", trivial_rows)) if rows
    }

    mix = vcall_rows[0]["mix"]
    print(f"\nsignaling, {datetime.now().isoformat(timespec='seconds')}: {options.clients} clients in {options.clients // 2} rooms, "
          f"{options.in_flight} in flight per client, {options.seconds:g} s measured after {options.warmup:g} s warm-up, "
          f"{options.rounds} round(s); 1 SDP (offer {mix['offerBytes']} B / answer {mix['answerBytes']} B) per "
          f"{mix['candidatesPerSDP']} candidates ({mix['candidateBytes']} B)")
    print(f"{'figure':<26} {'vcall-server':>13} {'node + ws':>11} {'target':>26} {'vcall/node':>11}"
          + (f" {'trivial relay (ceiling)':>24}" if trivial else ""))
    for name, _, fmt in figures:
        target, met = targets.get(name, ("", None))
        verdict = "" if met is None else ("  met" if met else "  NOT met")
        ratio = vcall[name] / node[name] if node[name] else float("nan")
        ceiling = f" {fmt.format(trivial[name]):>24}" if trivial else ""
        print(f"{name:<26} {fmt.format(vcall[name]):>13} {fmt.format(node[name]):>11} {target:>26} {ratio:>11.2f}{ceiling}"
              f"{verdict}")
    if trivial and trivial["messages relayed /s"] < 2 * node["messages relayed /s"]:
        print(f"note: the generator reached {trivial['messages relayed /s']:.0f} messages/s against a relay that parses nothing, "
              f"below 2× node: on this machine the load generator (and the kernel's loopback) bound what can be shown")
    for name, rows in extra_rows.items():
        extra = {figure: median(rows, key) for figure, key, _ in figures}
        print(f"{name} ({options.extra_servers[name]}): " + ", ".join(
            f"{figure} {fmt.format(extra[figure])}" for figure, _, fmt in figures))
    for label in errors:
        e = errors[label]
        print(f"{label}: {e['rooms_running']} rooms ran; {e['undelivered']} undelivered, {e['wrong']} wrong/out of order, "
              f"{e['server_errors']} server errors, {e['failures']} other failures")

    write_results("signaling", {"options": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(options).items()
                                            if k != "extra_servers"},
        "vcall": vcall, "node": node, "trivial_relay_ceiling": trivial,
        "ratio_vcall_over_node": {name: (vcall[name] / node[name] if node[name] else None) for name, _, _ in figures},
        "targets": {name: {"target": t, "met": m} for name, (t, m) in targets.items()},
        "errors": errors,
        "rounds": {"vcall": vcall_rows, "node": node_rows, "trivial": trivial_rows, **extra_rows},
    })


if __name__ == "__main__":
    main()
