"""The harness of the browser tests: the vcall-server process and one browser context per user.

The server binary comes from $VCALL_SERVER_BIN, else <repo>/.build/debug/vcall-server (build it with
`swift build --product vcall-server`). It runs on a free port with a temporary --data-dir and serves
the web app from this checkout's Sources/SignalingServer/Public (--web-root), so the tests check the
files in the tree even when the binary's bundled copy is older. Set VCALL_TEST_BUNDLED_WEB=1 to test
the bundled copy instead.

Screenshots go to <repo>/test-output/screenshots/ (git-ignored).
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page

REPO = Path(__file__).resolve().parents[2]
WEB_ROOT = REPO / "Sources" / "SignalingServer" / "Public"
SCREENSHOTS = REPO / "test-output" / "screenshots"
CHROMIUM = os.environ.get("VCALL_CHROMIUM", "/usr/bin/chromium")

# Every test gets this long, in seconds, before it is failed (and its browsers closed).
TEST_TIMEOUT = int(os.environ.get("VCALL_TEST_TIMEOUT", "150"))

CHROMIUM_ARGS = [
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    # getDisplayMedia picks the (fake, headless) screen without a picker.
    "--auto-select-desktop-capture-source=Entire screen",
    "--autoplay-policy=no-user-gesture-required",
    # Also gather loopback candidates, so calls connect on a machine (or namespace) with only `lo`.
    "--allow-loopback-in-peer-connection",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--no-sandbox",
    "--disable-dev-shm-usage",
    # Keep background tabs (several users in one browser) running at full speed.
    "--disable-background-timer-throttling",
    "--disable-backgrounding-occluded-windows",
    "--disable-renderer-backgrounding",
]


def server_binary() -> Path:
    env = os.environ.get("VCALL_SERVER_BIN")
    path = Path(env) if env else REPO / ".build" / "debug" / "vcall-server"
    if not path.is_file() or not os.access(path, os.X_OK):
        pytest.exit(
            f"vcall-server not found at {path}: build it with `swift build --product vcall-server` "
            "or point VCALL_SERVER_BIN at a built binary",
            returncode=2,
        )
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]



def enforce_time_limit(request):
    """The body of each suite's autouse `time_limit` fixture: fails a test that runs longer than
    TEST_TIMEOUT seconds (the fixtures still clean up). A generator: `yield from` it."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def expire(signum, frame):
        raise TimeoutError(f"{request.node.name} took longer than {TEST_TIMEOUT}s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(TEST_TIMEOUT)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def wait_for_health(url: str, process: subprocess.Popen, what: str, log_text, timeout: float = 30.0) -> None:
    """Waits until `url`/healthz answers 200; raises RuntimeError with the process's log if it exits or
    does not answer within `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}:\n{log_text()}")
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not answer /healthz within {timeout}s:\n{log_text()}")

class Server:
    """One vcall-server process on a free port with its own data dir.

    kill() ends it with SIGKILL (no graceful shutdown: sockets just vanish) and start() runs it again on
    the same port and data dir, as a crashed server restarted by its supervisor would be.
    """

    def __init__(self, *extra_args: str) -> None:
        self.binary = server_binary()
        self.data_dir = Path(tempfile.mkdtemp(prefix="vcall-app-test-"))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = self.data_dir / "server.log"
        self.args = [str(self.binary), "--host", "127.0.0.1", "--port", str(self.port), "--data-dir", str(self.data_dir)]
        if os.environ.get("VCALL_TEST_BUNDLED_WEB") != "1":
            self.args += ["--web-root", str(WEB_ROOT)]
        self.args += list(extra_args)
        self.log = open(self.log_path, "ab")
        self.process: subprocess.Popen | None = None
        self.start()

    def start(self, timeout: float = 30.0) -> None:
        """Start the server (again) on its port; retries while the port is still held by a dying process."""
        deadline = time.monotonic() + timeout
        while True:
            self.process = subprocess.Popen(self.args, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
            try:
                self.wait_healthy(timeout=max(1.0, deadline - time.monotonic()))
                return
            except RuntimeError:
                # An exit right away is most likely "address already in use" just after a kill: try again.
                if self.process.poll() is None or time.monotonic() >= deadline:
                    raise
                time.sleep(0.2)

    def kill(self) -> None:
        """SIGKILL the server: no close frames, no shutdown; the data dir stays for start()."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def wait_healthy(self, timeout: float = 30.0) -> None:
        try:
            wait_for_health(self.url, self.process, "vcall-server", self.log_text, timeout)
        except RuntimeError:
            if self.process.poll() is None:
                self.stop()
            raise

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=5)
        self.log.close()
        shutil.rmtree(self.data_dir, ignore_errors=True)


class Users:
    """Makes one browser context (cookies, storage, permissions) per simulated user."""

    def __init__(self, browser: Browser, server: Server) -> None:
        self.browser = browser
        self.server = server
        self.contexts: list[BrowserContext] = []
        self.pages: dict[str, Page] = {}
        self.console: dict[str, list[str]] = {}

    def new(self, label: str, width: int = 1280, height: int = 800, base_url: str | None = None) -> Page:
        """A page in a context of its own; `base_url` names another server than the module's (a second node)."""
        context = self.browser.new_context(
            base_url=base_url or self.server.url,
            viewport={"width": width, "height": height},
            permissions=["camera", "microphone"],
        )
        context.set_default_timeout(20_000)
        self.contexts.append(context)
        page = context.new_page()
        log = self.console.setdefault(label, [])
        page.on("console", lambda m: log.append(f"{m.type}: {m.text}"))
        page.on("pageerror", lambda e: log.append(f"pageerror: {e}"))
        self.pages[label] = page
        return page

    def close(self) -> None:
        for c in self.contexts:
            try:
                c.close()
            except Exception:
                pass


THROWAWAY = str(REPO / "scripts" / "postgres-throwaway")


class PostgresCluster:
    """A throwaway PostgreSQL cluster, its Unix socket in a folder of its own."""

    def __init__(self) -> None:
        self.dir = Path("/tmp") / f"vcall-pytest-pg-{secrets.token_hex(4)}"
        self.url = subprocess.run([THROWAWAY, "start", str(self.dir)], check=True, capture_output=True, text=True).stdout.strip()

    def new_database(self) -> str:
        name = "vcall_" + secrets.token_hex(6)
        subprocess.run(["psql", "-q", self.url.replace("postgres://", "postgresql://"), "-c", f"CREATE DATABASE {name}"], check=True)
        return self.url.replace("/postgres?", f"/{name}?")

    def halt(self) -> None:
        subprocess.run([THROWAWAY, "halt", str(self.dir)], check=True)

    def resume(self) -> None:
        subprocess.run([THROWAWAY, "resume", str(self.dir)], check=True)

    def remove(self) -> None:
        subprocess.run([THROWAWAY, "stop", str(self.dir)], check=False)
