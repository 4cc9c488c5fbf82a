"""Browser tests of the vcall web app: the real vcall-server plus Debian's Chromium with fake devices.

See app_harness.py for where the server binary comes from. Run from the repository root:

    .venv/bin/python -m pytest tests/app

Screenshots go to <repo>/test-output/screenshots/ (git-ignored).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from playwright.sync_api import Browser, sync_playwright

from app_harness import CHROMIUM, CHROMIUM_ARGS, SCREENSHOTS, Server, Users, enforce_time_limit


@pytest.fixture(scope="session")
def server():
    s = Server()
    yield s
    s.stop()


@pytest.fixture(scope="module")
def playwright_instance():
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="module")
def browser(playwright_instance) -> Browser:
    if not Path(CHROMIUM).exists():
        pytest.exit(f"Chromium not found at {CHROMIUM}: run scripts/setup (installs Debian's chromium)", returncode=2)
    b = playwright_instance.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
    yield b
    b.close()


@pytest.fixture
def users(browser, server, request):
    u = Users(browser, server)
    yield u
    failed = getattr(request.node, "rep_call", None)
    if os.environ.get("VCALL_TEST_SHOW_CONSOLE") == "1":
        for label, lines in u.console.items():
            for line in lines:
                if line.startswith(("error", "warning", "pageerror")):
                    print(f"[{request.node.name}] {label}: {line}")
    if failed is not None and failed.failed:
        for label, lines in u.console.items():
            print(f"--- console of {label} ---")
            print("\n".join(lines[-60:]))
        print("--- server log ---")
        print(server.log_text())
    u.close()
    errors = [f"{label}: {line}" for label, lines in u.console.items() for line in lines if line.startswith("pageerror")]
    assert not errors, "uncaught errors in the web app:\n" + "\n".join(errors)


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


@pytest.fixture(autouse=True)
def time_limit(request):
    """Fail a test that runs longer than TEST_TIMEOUT seconds (the fixtures still clean up)."""
    yield from enforce_time_limit(request)


@pytest.fixture(scope="session")
def screenshots() -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS
