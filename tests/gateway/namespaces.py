"""Network namespaces made by a test (inside scripts/netns-run's), processes started in them, and Chromium
pages opened from them: for calls between machines that cannot reach each other directly.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from gateway_harness import LOGS


def sh(*command: str) -> None:
    subprocess.run(command, check=True, capture_output=True, timeout=30)


@contextlib.contextmanager
def network_namespaces(names: list[str], links: list[tuple[str, str, str]], routes: dict[str, str],
                       etc: dict[str, dict[str, str]] | None = None):
    """Makes namespaces `names` (lo up, no forwarding) joined by veth pairs: each link (left, right, net)
    gives left NET.2/24 and right NET.1/24; `routes` maps a namespace to its default gateway; `etc` maps a
    namespace to files its processes see in /etc ({"resolv.conf": "nameserver …"}: `ip netns exec` mounts
    /etc/netns/NAME/FILE over /etc/FILE). Deletes them all on exit."""
    if os.geteuid() != 0 or not shutil.which("ip") or not shutil.which("turnserver"):
        pytest.fail("this test needs root inside scripts/netns-run, iproute2 and coturn (scripts/setup installs them)",
                    pytrace=False)
    for ns in names:
        sh("ip", "netns", "add", ns)
    try:
        for index, (left, right, net) in enumerate(links):
            left_dev, right_dev = f"l{index}{os.getpid()}", f"r{index}{os.getpid()}"
            sh("ip", "link", "add", left_dev, "type", "veth", "peer", "name", right_dev)
            for ns, dev, host in ((left, left_dev, 2), (right, right_dev, 1)):
                sh("ip", "link", "set", dev, "netns", ns)
                sh("ip", "-n", ns, "addr", "add", f"{net}.{host}/24", "dev", dev)
                sh("ip", "-n", ns, "link", "set", dev, "up")
        for ns in names:
            sh("ip", "-n", ns, "link", "set", "lo", "up")
            sh("ip", "netns", "exec", ns, "sysctl", "-q", "-w", "net.ipv4.ip_forward=0")
        for ns, gateway in routes.items():
            sh("ip", "-n", ns, "route", "add", "default", "via", gateway)
        for ns, files in (etc or {}).items():
            directory = Path("/etc/netns") / ns
            directory.mkdir(parents=True, exist_ok=True)
            for name, text in files.items():
                (directory / name).write_text(text)
        yield
    finally:
        for ns in names:
            subprocess.run(["ip", "netns", "delete", ns], capture_output=True)
            shutil.rmtree(Path("/etc/netns") / ns, ignore_errors=True)


class NamespacedProcess:
    """`command` run in namespace `ns` (its own session), output to test-output/gateway/LABEL.log."""

    def __init__(self, ns: str, label: str, command: list[str], cwd: Path | None = None) -> None:
        LOGS.mkdir(parents=True, exist_ok=True)
        self.label = label
        self.log_path = LOGS / f"{label}.log"
        self.log = open(self.log_path, "wb")
        self.process = subprocess.Popen(["ip", "netns", "exec", ns, *command], stdin=subprocess.PIPE, stdout=self.log,
                                        stderr=subprocess.STDOUT, start_new_session=True, cwd=cwd)

    def text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for(self, text: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.text():
                return
            if self.process.poll() is not None:
                break
            time.sleep(0.1)
        raise AssertionError(f"{self.label}: {text!r} not logged within {timeout}s:\n{self.text()[-3000:]}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(2)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()


@contextlib.contextmanager
def chromium_pages(playwright, work: Path, origins: list[tuple[str, str]], trust: str):
    """One headless Chromium per (namespace, origin), each with one page whose base URL is the origin,
    trusting the certificate behind `trust` (chromium_trust_argument). Closes the browsers on exit."""
    from app_harness import CHROMIUM, CHROMIUM_ARGS

    browsers = []
    try:
        pages = []
        for ns, origin in origins:
            # Chromium in the page's namespace: Playwright talks to it over inherited pipes.
            wrapper = work / f"chromium-{ns}"
            wrapper.write_text(f'#!/bin/sh\nexec ip netns exec {ns} {CHROMIUM} "$@"\n')
            wrapper.chmod(0o755)
            browser = playwright.chromium.launch(executable_path=str(wrapper), headless=True, args=[*CHROMIUM_ARGS, trust])
            browsers.append(browser)
            context = browser.new_context(base_url=origin, permissions=["camera", "microphone"])
            context.set_default_timeout(30_000)
            pages.append(context.new_page())
        yield pages
    finally:
        for browser in browsers:
            browser.close()
