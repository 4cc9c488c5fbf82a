"""Tests of vcall-gateway as a user runs it: the real binary with its in-process vcall-server,
Debian's Chromium joining through the web app, recordings checked with ffprobe.

Run inside the test network namespace (libnice skips loopback):

    scripts/netns-run .venv/bin/python -m pytest tests/gateway -v
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from playwright.sync_api import Browser, sync_playwright

# The web app tests' browser harness (Chromium flags, one context per user).
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "app"))

from app_harness import CHROMIUM, CHROMIUM_ARGS, enforce_time_limit  # noqa: E402


@pytest.fixture(autouse=True)
def gateway_environment() -> None:
    if os.environ.get("VCALL_IN_NETNS") != "1":
        pytest.fail("gateway tests must run inside the test network namespace: "
                    "scripts/netns-run .venv/bin/python -m pytest tests/gateway", pytrace=False)


@pytest.fixture(scope="module")
def browser() -> Browser:
    if not Path(CHROMIUM).exists():
        pytest.exit(f"Chromium not found at {CHROMIUM}: run scripts/setup", returncode=2)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def gateways():
    """Starts vcall-gateway processes (gateway_harness.Gateway's arguments) and stops them after the test."""
    from gateway_harness import Gateway

    started: list[Gateway] = []

    def start(label: str, room: str, *args: str, **kwargs) -> Gateway:
        gateway = Gateway(label, room, *args, **kwargs)
        started.append(gateway)
        return gateway

    yield start
    for gateway in reversed(started):
        gateway.stop()


@pytest.fixture(autouse=True)
def time_limit(request):
    """Fail a test that runs longer than TEST_TIMEOUT seconds (the fixtures still clean up)."""
    yield from enforce_time_limit(request)


def pytest_configure(config) -> None:
    config.addinivalue_line("markers", "faults: slow fault tests, run by scripts/faults rather than scripts/test")
