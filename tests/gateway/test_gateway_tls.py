"""HTTPS and WSS: vcall-server with --tls-cert/--tls-key, certificates from the test's own certificate
authority (made with openssl), reached at the test namespace's veth address 10.231.0.1, not localhost.

- Chromium opens the app over HTTPS there (it trusts the test CA's server key), gets the camera (a secure
  context) and two pages call each other.
- vcall-gateway joins over WSS with --ca (the test CA) and records; without --ca it refuses the server's
  certificate with an error that says what to do, and exits. Over TLS the gateway names the server by
  DNS name (SNI), so the test gives 10.231.0.1 the name vcall.test in an /etc/hosts of its own (a bind
  mount inside scripts/netns-run's private mount namespace).
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright

from app_harness import CHROMIUM, CHROMIUM_ARGS, free_port, server_binary
from app_helpers import call_each_other, new_room_id
from gateway_harness import LOGS, Gateway, chromium_trust_argument, gateway_binary, recordings, video_packets

ADDRESS = "10.231.0.1"
NAME = "vcall.test"


def openssl(*args: str, cwd: Path) -> bytes:
    return subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=30).stdout


@pytest.fixture(scope="module")
def certificates():
    """A certificate authority, and a server certificate it signed for 10.231.0.1 and 127.0.0.1."""
    if ADDRESS not in subprocess.run(["ip", "-o", "addr"], capture_output=True, text=True).stdout:
        pytest.fail(f"{ADDRESS} is not on this host: run the tests inside scripts/netns-run", pytrace=False)
    work = Path(tempfile.mkdtemp(prefix="vcall-tls-"))
    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=vcall test CA", cwd=work)
    openssl("req", *ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=vcall test server", cwd=work)
    (work / "server.ext").write_text(f"subjectAltName=IP:{ADDRESS},IP:127.0.0.1,DNS:{NAME}\nextendedKeyUsage=serverAuth\n"
                                     "basicConstraints=CA:FALSE\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", "server.pem", "-days", "2", "-extfile", "server.ext", cwd=work)
    hosts = work / "hosts"
    hosts.write_text(Path("/etc/hosts").read_text() + f"\n{ADDRESS} {NAME}\n")
    if os.environ.get("VCALL_IN_NETNS") != "1":
        pytest.fail("this module bind-mounts /etc/hosts: run it inside scripts/netns-run", pytrace=False)
    subprocess.run(["mount", "--bind", str(hosts), "/etc/hosts"], check=True)
    try:
        yield work
    finally:
        subprocess.run(["umount", "/etc/hosts"])
        subprocess.run(["rm", "-rf", str(work)])


@pytest.fixture(scope="module")
def tls_server(certificates):
    """vcall-server on every address of the namespace, serving HTTPS and WSS only."""
    port = free_port()
    LOGS.mkdir(parents=True, exist_ok=True)
    log_path = LOGS / "tls-server.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen([str(server_binary()), "--host", "0.0.0.0", "--port", str(port),
                                    "--data-dir", str(certificates / "data"),
                                    "--tls-cert", str(certificates / "server.pem"),
                                    "--tls-key", str(certificates / "server.key")],
                                   stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 30
    while "listening on https://" not in log_path.read_text(errors="replace"):
        assert process.poll() is None and time.monotonic() < deadline, log_path.read_text(errors="replace")
        time.sleep(0.1)
    yield port
    process.terminate()
    process.wait(timeout=10)


def test_chromium_calls_over_https_at_a_lan_address(certificates, tls_server):
    trust = chromium_trust_argument(certificates / "server.pem")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=[*CHROMIUM_ARGS, trust])
        try:
            pages = []
            for name in ("alice", "bob"):
                context = browser.new_context(base_url=f"https://{ADDRESS}:{tls_server}", permissions=["camera", "microphone"])
                context.set_default_timeout(20_000)
                pages.append(context.new_page())
            call_each_other(*pages, new_room_id())
            for page in pages:
                assert page.evaluate("() => location.protocol + ' ' + window.isSecureContext") == "https: true"
                assert page.evaluate("() => window.vcall.localMedia()")["video"] is True, "the camera started"
        finally:
            browser.close()


def test_gateway_joins_over_wss_with_the_test_ca_and_records(certificates, tls_server):
    url = f"wss://{NAME}:{tls_server}/ws"
    room = new_room_id()
    record = certificates / "rec"
    recorder = Gateway("tls-recorder", room, "--record", str(record), "--video", "none", "--audio", "none",
                       "--ca", str(certificates / "ca.pem"), server=url)
    sender = Gateway("tls-sender", room, "--size", "640x360", "--ca", str(certificates / "ca.pem"), server=url)
    try:
        recorder.wait_for_log("first frames of tls-sender written", timeout=60)
        time.sleep(2)
        assert sender.interrupt() == 0, sender.log_text()
        recorder.wait_for_log("finalized ", timeout=20)
        [path] = recordings(record)
        packets = video_packets(path)
        assert len(packets) > 30 and packets[0][1], f"{len(packets)} frames"
    finally:
        sender.stop()
        recorder.stop()


def test_gateway_refuses_an_untrusted_certificate_with_a_clear_error(tls_server):
    result = subprocess.run([str(gateway_binary()), "--room", new_room_id(), "--server", f"wss://{NAME}:{tls_server}/ws",
                             "--video", "none", "--audio", "none"],
                            stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "does not trust the server" in output and "--ca FILE" in output, output
    # An address instead of a name is refused up front, saying why.
    by_address = subprocess.run([str(gateway_binary()), "--room", "r", "--server", f"wss://{ADDRESS}:{tls_server}/ws"],
                                stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30)
    assert by_address.returncode != 0 and "DNS name" in by_address.stderr, by_address.stderr


def test_the_gateways_own_server_serves_https_and_wss_on_the_lan(certificates):
    """vcall-gateway --host 0.0.0.0 --tls-cert … --tls-key …: the in-process server takes calls from the LAN
    over WSS (another gateway, with --ca), and the gateway itself joins it and records."""
    port = free_port()
    room = new_room_id()
    record = certificates / "lan-rec"
    LOGS.mkdir(parents=True, exist_ok=True)
    log_path = LOGS / "tls-host.log"
    with open(log_path, "wb") as log:
        host = subprocess.Popen([str(gateway_binary()), f"--room={room}", "--name", "host", "--host", "0.0.0.0",
                                 "--port", str(port), "--data-dir", str(certificates / "host-data"),
                                 "--tls-cert", str(certificates / "server.pem"), "--tls-key", str(certificates / "server.key"),
                                 "--record", str(record), "--video", "none", "--audio", "none"],
                                stdin=subprocess.PIPE, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    sender = None
    try:
        deadline = time.monotonic() + 30
        while f"https://THIS-MACHINE:{port}/r/{room}" not in log_path.read_text(errors="replace"):
            assert host.poll() is None and time.monotonic() < deadline, log_path.read_text(errors="replace")
            time.sleep(0.1)
        sender = Gateway("tls-lan-sender", room, "--size", "640x360", "--ca", str(certificates / "ca.pem"),
                         server=f"wss://{NAME}:{port}/ws")
        deadline = time.monotonic() + 60
        while "first frames of tls-lan-sender written" not in log_path.read_text(errors="replace"):
            assert host.poll() is None and time.monotonic() < deadline, log_path.read_text(errors="replace")
            time.sleep(0.1)
        time.sleep(2)
        assert sender.interrupt() == 0, sender.log_text()
        host.send_signal(2)
        assert host.wait(timeout=40) == 0, log_path.read_text(errors="replace")
        [path] = recordings(record)
        assert len(video_packets(path)) > 30
    finally:
        if sender:
            sender.stop()
        if host.poll() is None:
            host.kill()
            host.wait()
