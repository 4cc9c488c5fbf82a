#!/usr/bin/env python3
"""Signaling across vcall-server nodes: the signaling benchmark's load on one node, then on two nodes of one
PostgreSQL database with the two members of every room on different nodes (every message crosses).

The same generator as bench/signaling.py (`vcall-bench signaling`: 1,000 clients in rooms of two, offer-,
answer- and candidate-sized messages, closed loop, every message checked for sender, type and order), with
`--url` given once per node. Both runs use the same throwaway PostgreSQL cluster (scripts/postgres-throwaway,
fsync off), a fresh database each, so the one-node figure is vcall on PostgreSQL too. During the measured
window it samples each node's CPU, PostgreSQL's (the postmaster and its backends), and each node's
`vcall_cluster_queue` (events waiting to be written to the outbox) from /metrics; the outbox's row count is
read at the end.

Goal (issue 14): cross-node p99 within 2× of the same-node p99, nothing lost or misaddressed, the outbox
backlog bounded.

    swift build -c release --product vcall-server && swift build -c release --product vcall-bench
    scripts/netns-run .venv/bin/python bench/cluster.py [--clients 1000] [--seconds 10]

Prints a table and writes bench/results/cluster.json.
"""

from __future__ import annotations

import argparse
import json
import re
import resource
import shutil
import subprocess
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from gateway_recording import REPO, TICKS, Process, free_port, write_results

THROWAWAY = REPO / "scripts" / "postgres-throwaway"


def postgres_cpu_seconds(cluster_dir: Path) -> float:
    """CPU of the cluster's postmaster and every process it started (backends, writers)."""
    postmaster = int((cluster_dir / "data" / "postmaster.pid").read_text().split()[0])
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid = int(stat.parent.name)
        if pid == postmaster or int(fields[1]) == postmaster:
            total += (int(fields[11]) + int(fields[12])) / TICKS
    return total


def metric(url: str, name: str) -> float:
    with urllib.request.urlopen(url + "/metrics", timeout=2) as r:
        match = re.search(rf"^{name} ([0-9.e+-]+)$", r.read().decode(), re.M)
    return float(match.group(1)) if match else 0.0


def run(label: str, node_count: int, database: str, cluster_dir: Path, options: argparse.Namespace, work: Path) -> dict:
    nodes, urls = [], []
    try:
        for i in range(node_count):
            port = free_port()
            nodes.append(Process(options.bin_dir / "vcall-server", f"{label}-node{i}", [
                "--host", "127.0.0.1", "--port", str(port), "--database", database,
                "--rate-limit", "1000000000", "--rate-burst", "1000000000", "--log-level", "warning"], work))
            nodes[-1].wait_for(r"listening on", 30)
            urls.append(f"http://127.0.0.1:{port}")
        result_file = work / f"{label}.json"
        generator = Process(options.bin_dir / "vcall-bench", f"generator-{label}", [
            "signaling", *sum((["--url", u.replace("http://", "ws://") + "/ws"] for u in urls), []),
            "--clients", str(options.clients), "--in-flight", str(options.in_flight), "--warmup", str(options.warmup),
            "--seconds", str(options.seconds), "--label", label, "--json", str(result_file)], work)
        queue_peak = 0.0
        try:
            generator.wait_for(r"measuring", options.setup_timeout + options.warmup + 30)
            node_cpu = [n.cpu_seconds() for n in nodes]
            pg_cpu, start = postgres_cpu_seconds(cluster_dir), time.monotonic()
            done = threading.Event()

            def sample() -> None:
                nonlocal queue_peak
                while not done.wait(0.25):
                    for u in urls:
                        try:
                            queue_peak = max(queue_peak, metric(u, "vcall_cluster_queue"))
                        except OSError:
                            pass

            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
            generator.wait_for(r"measured", options.seconds + 30)
            elapsed = time.monotonic() - start
            done.set()
            sampler.join()
            node_cores = [(n.cpu_seconds() - c) / elapsed for n, c in zip(nodes, node_cpu)]
            pg_cores = (postgres_cpu_seconds(cluster_dir) - pg_cpu) / elapsed
            generator.process.wait(timeout=60)
        finally:
            generator.stop()
        result = json.loads(result_file.read_text())
        outbox_rows = int(subprocess.run(
            ["psql", "-tA", database.replace("postgres://", "postgresql://"), "-c",
             "SELECT count(*) FROM cluster_outbox"], check=True, capture_output=True, text=True).stdout.strip() or 0)
        result.update(node_cores=node_cores, postgres_cores=pg_cores, cluster_queue_peak=queue_peak, outbox_rows_after=outbox_rows)
        for line in generator.text().splitlines():
            if "paired" in line:
                print(line, flush=True)
        return result
    finally:
        for n in nodes:
            n.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--in-flight", type=int, default=2)
    parser.add_argument("--warmup", type=float, default=3)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--setup-timeout", type=float, default=60)
    parser.add_argument("--bin-dir", type=Path, default=REPO / ".build" / "release")
    options = parser.parse_args()
    for name in ("vcall-server", "vcall-bench"):
        if not (options.bin_dir / name).exists():
            raise SystemExit(f"{options.bin_dir / name} not found: swift build -c release --product {name}")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = options.clients * 2 + 256
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted if hard == resource.RLIM_INFINITY else min(hard, wanted), hard))

    work = Path(tempfile.mkdtemp(prefix="vcall-cluster-bench-"))
    cluster_dir = Path(tempfile.mkdtemp(prefix="vcall-bench-pg-", dir="/tmp"))
    base = subprocess.run([str(THROWAWAY), "start", str(cluster_dir)], check=True, capture_output=True, text=True).stdout.strip()
    rows = {}
    try:
        for label, count in (("one-node", 1), ("two-nodes", 2)):
            name = "bench_" + label.replace("-", "_")
            subprocess.run(["psql", "-q", base.replace("postgres://", "postgresql://"), "-c", f"CREATE DATABASE {name}"], check=True)
            rows[label] = run(label, count, base.replace("/postgres?", f"/{name}?"), cluster_dir, options, work)
    finally:
        subprocess.run([str(THROWAWAY), "stop", str(cluster_dir)], check=False)
        shutil.rmtree(work, ignore_errors=True)

    one, two = rows["one-node"], rows["two-nodes"]
    figures = [
        ("messages relayed /s", lambda r: r["messagesPerSecond"], "{:.0f}"),
        ("latency p50 ms", lambda r: r["latencyMilliseconds"]["p50"], "{:.2f}"),
        ("latency p99 ms", lambda r: r["latencyMilliseconds"]["p99"], "{:.2f}"),
        ("latency max ms", lambda r: r["latencyMilliseconds"]["max"], "{:.2f}"),
        ("vcall-server CPU, cores", lambda r: sum(r["node_cores"]), "{:.2f}"),
        ("PostgreSQL CPU, cores", lambda r: r["postgres_cores"], "{:.2f}"),
        ("generator CPU, cores", lambda r: r["generatorCores"], "{:.2f}"),
        ("outbox queue peak", lambda r: r["cluster_queue_peak"], "{:.0f}"),
        ("outbox rows after", lambda r: r["outbox_rows_after"], "{:.0f}"),
    ]
    print(f"\ncluster: {options.clients} clients in {options.clients // 2} rooms of two, {options.seconds:g} s measured; "
          "two nodes: the members of every room on different nodes")
    print(f"{'figure':<26} {'one node':>10} {'two nodes':>10} {'two/one':>8}")
    for name, key, fmt in figures:
        a, b = key(one), key(two)
        print(f"{name:<26} {fmt.format(a):>10} {fmt.format(b):>10} {(b / a if a else float('nan')):>8.2f}")
    p99_ratio = two["latencyMilliseconds"]["p99"] / one["latencyMilliseconds"]["p99"]
    errors = {label: {"rooms_running": r["roomsRunning"], "undelivered": r["undelivered"],
                      "wrong": r["wrongFrom"] + r["wrongType"] + r["outOfOrder"] + r["truncated"],
                      "server_errors": sum(r["serverErrors"].values()), "failures": sum(r["failures"].values())}
              for label, r in rows.items()}
    for label, e in errors.items():
        print(f"{label}: {e['rooms_running']} rooms ran; {e['undelivered']} undelivered, {e['wrong']} wrong/out of order, "
              f"{e['server_errors']} server errors, {e['failures']} other failures")
    print(f"goal: cross-node p99 ≤ 2× same-node p99: {p99_ratio:.2f}× — {'met' if p99_ratio <= 2 else 'NOT met'}")
    write_results("cluster", {"options": {k: str(v) if isinstance(v, Path) else v for k, v in vars(options).items()},
                              "one_node": one, "two_nodes": two, "p99_ratio": p99_ratio, "errors": errors})


if __name__ == "__main__":
    main()
