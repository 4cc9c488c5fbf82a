"""The vcall-gateway process in tests: started with its own in-process vcall-server (or pointed at
one), driven through its standard input, stopped with SIGINT (graceful) or SIGKILL.

The binary comes from $VCALL_GATEWAY_BIN, else <repo>/.build/debug/vcall-gateway.
Its output (plain lines: stdout is not a terminal) goes to <repo>/test-output/gateway/<label>.log.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

# The browser tests' harness, beside this one (also when a benchmark imports this file).
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "app"))

from app_harness import wait_for_health  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
LOGS = REPO / "test-output" / "gateway"


def gateway_binary() -> Path:
    env = os.environ.get("VCALL_GATEWAY_BIN")
    path = Path(env) if env else REPO / ".build" / "debug" / "vcall-gateway"
    if not path.is_file() or not os.access(path, os.X_OK):
        pytest.exit(f"vcall-gateway not found at {path}: build it with `swift build --product vcall-gateway` "
                    "or set VCALL_GATEWAY_BIN", returncode=2)
    return path


class Gateway:
    """One vcall-gateway process. With `server=None` it runs its own vcall-server on `port`."""

    def __init__(self, label: str, room: str, *args: str, port: int | None = None, server: str | None = None,
                 env: dict[str, str] | None = None) -> None:
        self.label = label
        self.room = room
        self.work = Path(tempfile.mkdtemp(prefix=f"vcall-gw-{label}-"))
        self.port = port
        self.url = f"http://127.0.0.1:{port}" if port else None
        command = [str(gateway_binary()), f"--room={room}", "--name", label, *args]
        if server:
            command += ["--server", server]
        else:
            command += ["--port", str(port), "--data-dir", str(self.work / "data")]
        LOGS.mkdir(parents=True, exist_ok=True)
        self.log_path = LOGS / f"{label}.log"
        self.log = open(self.log_path, "wb")
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=self.log, stderr=subprocess.STDOUT,
                                        cwd=REPO, env={**os.environ, **(env or {})}, start_new_session=True)
        if self.url:
            self.wait_healthy()

    def wait_healthy(self, timeout: float = 30.0) -> None:
        wait_for_health(self.url, self.process, f"vcall-gateway {self.label} (its in-process server)",
                        self.log_text, timeout)

    def command(self, line: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write((line + "\n").encode())
        self.process.stdin.flush()

    def wait_for_log(self, text: str, timeout: float = 30.0, after: int = 0) -> str:
        """Waits until `text` appears in the log (from byte `after`); returns the log."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            log = self.log_text(full=True)
            if text in log[after:]:
                return log
            if self.process.poll() is not None:
                break
            time.sleep(0.1)
        raise AssertionError(f"{self.label}: {text!r} not logged within {timeout}s:\n{self.log_text()}")

    def status(self, timeout: float = 10.0) -> str:
        """Types `status` and returns the block it printed."""
        mark = len(self.log_text(full=True))
        self.command("status")
        log = self.wait_for_log("· offers sent", timeout, after=mark)
        return log[mark:]

    def interrupt(self, timeout: float = 30.0) -> int:
        """SIGINT, as Ctrl-C: the gateway finalizes its recordings and leaves. A gateway that does not
        exit in time gets its threads' stacks written to its log (gdb), so that a hang can be read."""
        self.process.send_signal(signal.SIGINT)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.dump_threads()
            raise

    def dump_threads(self) -> None:
        if shutil.which("gdb") is None or self.process.poll() is not None:
            return
        stacks = subprocess.run(["gdb", "-p", str(self.process.pid), "-batch", "-ex", "thread apply all bt 30"],
                                capture_output=True, text=True, timeout=120)
        with open(self.log_path, "a") as log:
            log.write(f"\n=== {self.label} did not exit: threads ===\n{stacks.stdout}\n")

    def kill(self) -> None:
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def log_text(self, full: bool = False) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return text if full else text[-4000:]

    def stop(self) -> None:
        if self.process.poll() is None:
            try:
                self.interrupt(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()
        self.log.close()
        shutil.rmtree(self.work, ignore_errors=True)


    def websocket(self) -> str:
        """The in-process server's WebSocket, for other gateways to join through."""
        assert self.port, "this gateway runs no server of its own"
        return f"ws://127.0.0.1:{self.port}/ws"

    def log_offset(self) -> int:
        return len(self.log_text(full=True))

    def frames_sent_to(self, peer: str) -> int:
        """Video frames this gateway sent to `peer`, from the line it logs when their connection ends."""
        match = re.findall(rf"media with {re.escape(peer)}: sent (\d+) video frames", self.log_text(full=True))
        assert match, f"{self.label} logged no media summary for {peer}:\n{self.log_text()}"
        return int(match[-1])


def run_gateway(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """Runs a one-shot vcall-gateway subcommand (repair) and returns its result."""
    return subprocess.run([str(gateway_binary()), *args], capture_output=True, text=True, timeout=timeout, cwd=REPO)


def ffprobe(path: Path) -> dict:
    out = subprocess.run(["ffprobe", "-v", "error", "-show_streams", "-show_format", "-of", "json", str(path)],
                         capture_output=True, check=True, timeout=60)
    return json.loads(out.stdout)


def video_packets(path: Path) -> list[tuple[float, bool]]:
    """(time in seconds, is keyframe) of every video packet in the file, in order."""
    out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "packet=pts_time,flags",
                          "-of", "csv=p=0", str(path)], capture_output=True, text=True, check=True, timeout=60)
    packets = []
    for line in out.stdout.split():
        time_text, flags = line.split(",", 1)
        if time_text not in ("", "N/A"):
            packets.append((float(time_text), "K" in flags))
    return packets


def decodes_cleanly(path: Path) -> str:
    """Decodes every frame with ffmpeg; returns the decoders' errors (empty when every frame decoded).
    Lines from ffmpeg's null output muxer are not decoding errors and are left out, and so are ffmpeg's
    "Last message repeated N times" after one of them."""
    out = subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-f", "null", "-"],
                         capture_output=True, text=True, timeout=120)
    errors: list[str] = []
    muxer_line = False
    for line in out.stderr.splitlines():
        if line.startswith("[null @"):
            muxer_line = True
        elif line.strip().startswith("Last message repeated") and muxer_line:
            pass
        elif line.strip():
            muxer_line = False
            errors.append(line)
    return "\n".join(errors)


def finalized_report(recording: Path) -> dict | None:
    """The recording's JSON report once the recording has ended (a recording writes a provisional one,
    "not finalized", as it starts); None before."""
    try:
        report = json.loads(recording.with_suffix(".json").read_text())
    except (OSError, ValueError):
        return None
    return None if (report.get("error") or "").startswith("not finalized") else report


def recordings(directory: Path) -> list[Path]:
    return sorted(p for p in directory.glob("*.webm") if not p.name.endswith(".repaired.webm"))


def wait_for_finalized(record_dir: Path, count: int, timeout: float = 10.0) -> list[Path]:
    """Waits until `count` recordings are finalized (their JSON report is complete); returns them."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        files = recordings(record_dir)
        if len(files) == count and all(finalized_report(f) for f in files):
            return files
        time.sleep(0.1)
    raise AssertionError(f"{count} finalized recordings expected within {timeout}s, found {sorted(p.name for p in record_dir.iterdir())}")


class Xvfb:
    """An X server on a free display number, for the screen source; stop() kills it."""

    def __init__(self) -> None:
        for number in range(90, 140):
            if not Path(f"/tmp/.X11-unix/X{number}").exists() and not Path(f"/tmp/.X{number}-lock").exists():
                break
        self.display = f":{number}"
        self.process = subprocess.Popen(["Xvfb", self.display, "-screen", "0", "1280x720x24", "-nolisten", "tcp"],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 10
        while not Path(f"/tmp/.X11-unix/X{number}").exists():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"Xvfb {self.display} did not start")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


TURN_ALLOCATE = """
import asyncio, sys
import aioice.turn, aioice.stun
async def main():
    try:
        transport, _ = await aioice.turn.create_turn_endpoint(asyncio.DatagramProtocol, (sys.argv[1], 3478),
                                                              username=sys.argv[2], password=sys.argv[3])
    except aioice.stun.TransactionFailed as error:
        print("refused", error.response.attributes.get("ERROR-CODE"))
        return
    print("allocated", transport.get_extra_info("sockname"))
    transport.close()
asyncio.run(asyncio.wait_for(main(), 10))
"""


def turn_allocation(server: str, username: str, password: str, netns: str | None = None) -> str:
    """Asks the TURN server at SERVER:3478 for a relay with these credentials, with aioice (a TURN client
    independent of vcall's), in network namespace `netns` if given: "allocated …" or "refused (CODE, …)"."""
    command = [sys.executable, "-c", TURN_ALLOCATE, server, username, password]
    if netns:
        command = ["ip", "netns", "exec", netns, *command]
    result = subprocess.run(command, capture_output=True, text=True, timeout=30)
    return result.stdout + result.stderr


def self_signed_certificate(directory: Path, subject_alt_name: str, certificate: str = "cert.pem",
                            key: str = "key.pem") -> tuple[Path, Path]:
    """An ECDSA P-256 certificate valid for a day, for `subject_alt_name` ("IP:10.0.0.1,DNS:localhost"),
    and its unencrypted key, written into `directory`."""
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                    "-keyout", key, "-out", certificate, "-days", "1", "-subj", "/CN=vcall test",
                    "-addext", f"subjectAltName={subject_alt_name}"], cwd=directory, check=True, capture_output=True)
    return directory / certificate, directory / key


def chromium_trust_argument(certificate: Path) -> str:
    """Chromium's flag that trusts the certificate's key: the base64 SHA-256 of its public key (SPKI)."""
    key = subprocess.run(["openssl", "x509", "-in", str(certificate), "-pubkey", "-noout"], check=True,
                         capture_output=True).stdout
    der = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "der"], input=key, check=True, capture_output=True).stdout
    return "--ignore-certificate-errors-spki-list=" + base64.b64encode(hashlib.sha256(der).digest()).decode()
