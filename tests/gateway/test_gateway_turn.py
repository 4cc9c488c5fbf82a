"""Two gateways that cannot reach each other directly connect through a TURN server (Debian's coturn)
given with --turn, and one records the other.

Three network namespaces made by the test (inside scripts/netns-run's): A and B each hold one peer; T
holds coturn and vcall-server and has a leg into each of A and B:

    A 10.77.1.2 ── 10.77.1.1 T 10.77.2.1 ── 10.77.2.2 B

T does not forward packets, so A's packets to B's own address die in T: the only way between A and B
is through coturn's relay addresses, which are T's own.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from app_harness import server_binary
from gateway_harness import (chromium_trust_argument, gateway_binary, recordings, self_signed_certificate,
                             turn_allocation, video_packets)
from namespaces import NamespacedProcess, chromium_pages, network_namespaces

TURN_USER, TURN_PASSWORD = "vcall", "relay-only-secret"
TURN_SECRET = "vcall-shared-turn-secret"


@pytest.fixture
def namespaces():
    a, b, t = (f"vc{x}{os.getpid()}" for x in "ABT")
    with network_namespaces([a, b, t], [(a, t, "10.77.1"), (b, t, "10.77.2")], {a: "10.77.1.1", b: "10.77.2.1"}):
        yield a, b, t


class RelayedCall:
    """coturn and vcall-server in namespace T, a recording gateway and a sending gateway in theirs; each
    gateway reaches the server and TURN at the addresses given. `stop()` ends everything started."""

    def __init__(self, label: str, work: Path, t: str, turn_listen: list[str], recorder_ns: str, recorder_via: str,
                 recorder_turn: str, sender_ns: str, sender_via: str, sender_turn: str,
                 recorder_args: tuple[str, ...] = (), before_gateways=None, shared_secret: str | None = None) -> None:
        """With `shared_secret`, coturn runs in shared-secret mode and vcall-server hands each gateway its
        own credential for `turn:RECORDER_TURN` in `welcome`; the gateways get no --turn of their own."""
        self.started: list[NamespacedProcess] = []
        self.record = work / "rec"
        self.shared_secret = shared_secret
        try:
            self.begin(label, work, t, turn_listen, recorder_ns, recorder_via, recorder_turn, sender_ns, sender_via,
                       sender_turn, recorder_args, before_gateways)
        except BaseException:
            self.stop()
            raise

    def begin(self, label, work, t, turn_listen, recorder_ns, recorder_via, recorder_turn, sender_ns, sender_via,
              sender_turn, recorder_args, before_gateways) -> None:
        secret = self.shared_secret
        auth = ["--use-auth-secret", f"--static-auth-secret={secret}"] if secret else \
            ["--lt-cred-mech", f"--user={TURN_USER}:{TURN_PASSWORD}"]
        self.turn = self.start(t, f"{label}-turnserver", [
            "turnserver", "-n", "-v", "--no-cli", "--no-tls", "--no-dtls", "--listening-port=3478",
            *(f"--listening-ip={ip}" for ip in turn_listen), "--relay-ip=10.77.1.1",
            "--min-port=49200", "--max-port=49400", *auth,
            "--realm=vcall.test", "--log-file=stdout", "--simple-log", f"--pidfile={work / 'turn.pid'}"])
        # T accepts packets for any of its addresses on any leg: one TURN address serves both gateways.
        server_turn = ["--turn", f"turn:{recorder_turn}", "--turn-secret", secret] if secret else []
        self.start(t, f"{label}-vcall-server", [str(server_binary()), "--host", "0.0.0.0", "--port", "18300",
                                               "--data-dir", str(work / "data"), *server_turn]).wait_for("Server started", 30)
        if before_gateways:
            before_gateways(self)
        def own_turn(address: str) -> list[str]:
            return [] if secret else ["--turn", f"{TURN_USER}:{TURN_PASSWORD}@turn:{address}"]
        self.recorder = self.start(recorder_ns, f"{label}-recorder", [
            str(gateway_binary()), f"--room={label}", "--name", "recorder", "--server", f"ws://{recorder_via}:18300/ws",
            *own_turn(recorder_turn), "--record", str(self.record),
            "--video", "none", "--audio", "none", *recorder_args])
        self.sender = self.start(sender_ns, f"{label}-sender", [
            str(gateway_binary()), f"--room={label}", "--name", "sender", "--server", f"ws://{sender_via}:18300/ws",
            *own_turn(sender_turn), "--size", "640x360"])

    def start(self, ns: str, label: str, command: list[str]) -> NamespacedProcess:
        process = NamespacedProcess(ns, label, command)
        self.started.append(process)
        return process

    def record_for(self, seconds: float) -> Path:
        """Waits for the recording to start, lets it run, ends the call and returns the finalized file."""
        self.recorder.wait_for("first frames of sender written", 90)
        time.sleep(seconds)
        self.sender.stop()
        self.recorder.wait_for("finalized ", 30)
        [path] = recordings(self.record)
        return path

    def stop(self) -> None:
        for process in reversed(self.started):
            process.stop()


def test_gateways_without_a_direct_path_connect_through_turn_and_record(namespaces):
    a, b, t = namespaces
    # The direct path really is closed: from A, B's address does not answer at all (T drops the packets;
    # with forwarding, B would refuse the connection at once).
    probe = "import socket\ntry:\n    socket.create_connection(('10.77.2.2', 9), timeout=1)\nexcept socket.timeout:\n    print('unreachable')\nexcept OSError as e:\n    print(e)"
    reach = subprocess.run(["ip", "netns", "exec", a, "python3", "-c", probe], capture_output=True, text=True, timeout=10)
    assert reach.stdout.strip() == "unreachable", reach.stdout + reach.stderr
    work = Path(tempfile.mkdtemp(prefix="vcall-turn-"))
    call = None
    try:
        call = RelayedCall("turn", work, t, ["10.77.1.1", "10.77.2.1"], b, "10.77.2.1", "10.77.2.1:3478",
                           a, "10.77.1.1", "10.77.1.1:3478")
        packets = video_packets(call.record_for(4))
        assert len(packets) > 60 and packets[0][1], f"{len(packets)} frames"
        # Only coturn joins A and B, so the call went through it; its log shows the relay allocations
        # and the channels bound for the media.
        call.turn.stop()
        log = call.turn.text().lower()
        assert log.count("allocate processed, success") >= 2 and "channel_bind processed, success" in log, log[-3000:]
    finally:
        if call:
            call.stop()
        shutil.rmtree(work, ignore_errors=True)


def turn_credential(secret: str, name: str, expiry: int) -> tuple[str, str]:
    """coturn's shared-secret credential, computed independently of vcall-server."""
    import base64
    import hashlib
    import hmac
    username = f"{expiry}:{name}"
    return username, base64.b64encode(hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()).decode()


def test_turn_credentials_from_a_shared_secret_connect_a_call_and_coturn_refuses_expired_ones(namespaces):
    """vcall-server --turn-secret: each gateway gets a short-lived credential in welcome (no --turn of its
    own); they connect through coturn and record. A credential whose expiry has passed is refused by
    coturn, one still valid is accepted (an independent TURN client, aioice, in A)."""
    a, b, t = namespaces
    work = Path(tempfile.mkdtemp(prefix="vcall-turn-secret-"))
    call = None
    try:
        call = RelayedCall("turnsecret", work, t, ["10.77.1.1", "10.77.2.1"], b, "10.77.2.1", "10.77.1.1:3478",
                           a, "10.77.1.1", "10.77.1.1:3478", shared_secret=TURN_SECRET)
        packets = video_packets(call.record_for(4))
        assert len(packets) > 60 and packets[0][1], f"{len(packets)} frames"
        now = int(time.time())
        for expiry, outcome in ((now - 60, "refused"), (now + 3600, "allocated")):
            username, password = turn_credential(TURN_SECRET, "probe", expiry)
            result = turn_allocation("10.77.1.1", username, password, netns=a)
            assert result.startswith(outcome), f"expiry {expiry - now:+d} s: {result}"
        call.turn.stop()
        log = call.turn.text().lower()
        assert log.count("allocate processed, success") >= 3, log[-3000:]
    finally:
        if call:
            call.stop()
        shutil.rmtree(work, ignore_errors=True)


def test_chromium_pages_without_a_direct_path_call_over_https_through_coturn(namespaces, tmp_path):
    """Two Chromium pages, one in A and one in B (which cannot reach each other), open the app over HTTPS
    at T's two addresses; vcall-server hands each a TURN credential of its own (--turn-secret), and the
    call goes through coturn: both pages play the other's video."""
    from playwright.sync_api import sync_playwright

    from app_helpers import call_each_other, new_room_id

    a, b, t = namespaces
    certificate, key = self_signed_certificate(tmp_path, "IP:10.77.1.1,IP:10.77.2.1")
    trust = chromium_trust_argument(certificate)
    started: list[NamespacedProcess] = []
    try:
        turn = NamespacedProcess(t, "chromium-turnserver", [
            "turnserver", "-n", "-v", "--no-cli", "--no-tls", "--no-dtls", "--listening-port=3478",
            "--listening-ip=10.77.1.1", "--listening-ip=10.77.2.1", "--relay-ip=10.77.1.1",
            "--min-port=49200", "--max-port=49400", "--use-auth-secret", f"--static-auth-secret={TURN_SECRET}",
            "--realm=vcall.test", "--log-file=stdout", "--simple-log", f"--pidfile={tmp_path / 'turn.pid'}"])
        started.append(turn)
        server = NamespacedProcess(t, "chromium-vcall-server", [
            str(server_binary()), "--host", "0.0.0.0", "--port", "18301", "--data-dir", str(tmp_path / "data"),
            "--tls-cert", str(certificate), "--tls-key", str(key),
            "--turn", "turn:10.77.1.1:3478", "--turn-secret", TURN_SECRET])
        started.append(server)
        server.wait_for("listening on https://", 30)
        with sync_playwright() as playwright, chromium_pages(
                playwright, tmp_path, [(a, "https://10.77.1.1:18301"), (b, "https://10.77.2.1:18301")], trust) as pages:
            call_each_other(*pages, new_room_id(), timeout=60_000)
        turn.stop()
        log = turn.text().lower()
        assert log.count("allocate processed, success") >= 2 and "channel_bind processed, success" in log, log[-3000:]
    finally:
        for process in reversed(started):
            process.stop()
