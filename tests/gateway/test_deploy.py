"""The deployment files in deploy/ do what README's "Deploying" says: its "By hand" commands, run as
written, give a call between two Chromium pages over HTTPS through coturn; the systemd units pass
`systemd-analyze verify`, and the programs accept exactly the command lines the units run, with the
example settings files (TLS from the test's own CA, coturn with the example turnserver.conf); the README's
systemd commands, run in a namespace that systemd boots, start units that serve HTTPS and record a room.
There is no container engine on the test machines: deploy/container/Containerfile is not built here.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import os
import re
import shlex
import shutil
import signal
import socket as sockets
import ssl
import struct
import sys
import subprocess
import time
from pathlib import Path

import pytest

from app_harness import free_port, server_binary
from gateway_harness import (LOGS, REPO, chromium_trust_argument, gateway_binary, self_signed_certificate,
                             turn_allocation)
from namespaces import NamespacedProcess, chromium_pages, network_namespaces

DEPLOY = REPO / "deploy"


class WebSocket:
    """The least WebSocket client over TLS the test needs (Python's standard library has none): text frames."""

    def __init__(self, host: str, port: int, ca: Path | None, path: str = "/ws", source: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        """Over TLS trusting `ca` (plain TCP when None), from local address `source` if given."""
        connection = sockets.create_connection((host, port), timeout=10, source_address=(source, 0) if source else None)
        self.socket = ssl.create_default_context(cafile=str(ca)).wrap_socket(connection, server_hostname=host) if ca else connection
        key = base64.b64encode(os.urandom(16)).decode()
        extra = "".join(f"{name}: {value}\r\n" for name, value in (headers or {}).items())
        self.socket.sendall((f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                             f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n").encode())
        head = b""
        while b"\r\n\r\n" not in head:
            head += self.socket.recv(1)
        assert head.startswith(b"HTTP/1.1 101"), head

    def __enter__(self):
        return self

    def __exit__(self, *_):
        self.socket.close()

    def _read(self, count: int) -> bytes:
        data = b""
        while len(data) < count:
            chunk = self.socket.recv(count - len(data))
            assert chunk, "the server closed the socket"
            data += chunk
        return data

    def receive(self) -> dict:
        first, second = self._read(2)
        length = second & 0x7F
        if length == 126:
            length = struct.unpack("!H", self._read(2))[0]
        elif length == 127:
            length = struct.unpack("!Q", self._read(8))[0]
        payload = self._read(length)
        return json.loads(payload) if first & 0x0F == 1 else self.receive()

    def receive_type(self, kind: str) -> dict:
        while (message := self.receive())["type"] != kind:
            pass
        return message

    def send(self, message: dict) -> None:
        payload = json.dumps(message).encode()
        mask = os.urandom(4)
        size = bytes([0x80 | len(payload)]) if len(payload) < 126 else bytes([0xFE]) + struct.pack("!H", len(payload))
        self.socket.sendall(bytes([0x81]) + size + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))


def environment_file(path: Path) -> dict[str, str]:
    values = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values


def exec_start(unit: Path, variables: dict[str, str]) -> list[str]:
    """The unit's ExecStart as argv: continuation lines joined, ${X} and $X expanded as systemd does
    ($X unbraced splits into words)."""
    text = unit.read_text().replace("\\\n", " ")
    [line] = [l for l in text.splitlines() if l.startswith("ExecStart=")]
    words = []
    for word in shlex.split(line.removeprefix("ExecStart=")):
        if re.fullmatch(r"\$[A-Z_]+", word):
            words += variables[word[1:]].split()
        else:
            words.append(re.sub(r"\$\{([A-Z_]+)\}", lambda m: variables[m.group(1)], word))
    return words


def readme_blocks(marker: str, count: int = 1) -> list[list[str]]:
    """The lines of the README's first `count` fenced blocks after `marker`."""
    text = (REPO / "README.md").read_text()
    return [block.splitlines() for block in text[text.index(marker):].split("```\n")[1:2 * count:2]]


def readme_block(marker: str) -> list[str]:
    """The lines of the README's first fenced block after `marker`."""
    return readme_blocks(marker)[0]


def test_the_by_hand_commands_give_a_call_over_https_through_coturn(tmp_path):
    """README's "By hand" block, from its third line on, run by bash in namespace T as written, in a
    folder laid out as a checkout (deploy/, .build/release/vcall-server, the certificate as fullchain.pem
    and privkey.pem); with VCALL_DEPLOY_CHECKOUT=CLONE, the whole block in that clone. Two Chromium pages, in A and B, open https://calls.example.org (each namespace's hosts
    file names T's address on its side); T does not forward, so the pages reach each other only through
    coturn's relays. Addresses are from the documentation ranges, which the example turnserver.conf does
    not deny as peers (it denies private ones).

        A 198.51.100.2 ── 198.51.100.1 T 203.0.113.1 ── 203.0.113.2 B
    """
    from playwright.sync_api import sync_playwright

    from app_helpers import call_each_other, new_room_id

    lines = readme_block("<!-- by-hand")
    assert lines[0] == "scripts/setup" and lines[1].startswith("swift build -c release --product vcall-server"), lines
    if checkout := os.environ.get("VCALL_DEPLOY_CHECKOUT"):
        # The whole block, setup and release build included, in that clone (swift on PATH).
        checkout, script, startup = Path(checkout), lines, 3600
    else:
        # The test run has done the first two lines already (its debug binaries stand in for release ones).
        checkout, script, startup = tmp_path / "vcall", lines[2:], 30
        (checkout / ".build" / "release").mkdir(parents=True)
        (checkout / "deploy").symlink_to(DEPLOY)
        (checkout / ".build" / "release" / "vcall-server").symlink_to(server_binary())
    certificate, _ = self_signed_certificate(checkout, "DNS:calls.example.org", certificate="fullchain.pem",
                                             key="privkey.pem")
    a, b, t = (f"vd{x}{os.getpid()}" for x in "ABT")
    with network_namespaces([a, b, t], [(a, t, "198.51.100"), (b, t, "203.0.113")],
                            {a: "198.51.100.1", b: "203.0.113.1"},
                            {a: {"resolv.conf": "nameserver 198.51.100.1\n"}, b: {"resolv.conf": "nameserver 203.0.113.1\n"}}):
        dns = NamespacedProcess(t, "deploy-by-hand-dns", [sys.executable, str(Path(__file__).parent / "dns_responder.py"),
                                                         "calls.example.org", "198.51.100.0/24=198.51.100.1",
                                                         "203.0.113.0/24=203.0.113.1"])
        dns.wait_for("answering", 10)
        shell = NamespacedProcess(t, "deploy-by-hand", ["bash", "-e", "-c", "\n".join(script)], cwd=checkout)
        run = checkout / "run"
        def log(name: str) -> str:
            return (run / name).read_text(errors="replace") if (run / name).exists() else ""
        try:
            deadline = time.monotonic() + startup
            while "listening on https://0.0.0.0:443" not in log("vcall-server.log"):
                assert time.monotonic() < deadline, f"{shell.text()}\n{log('vcall-server.log')}\n{log('turnserver.log')}"
                time.sleep(0.2)
            with sync_playwright() as playwright, chromium_pages(
                    playwright, tmp_path, [(a, "https://calls.example.org"), (b, "https://calls.example.org")],
                    chromium_trust_argument(certificate)) as pages:
                ids = call_each_other(*pages, new_room_id(), timeout=60_000)
                # Through coturn: one end of the pair each page uses is a coturn relay address (coturn, in T,
                # also reaches a page's own address, so the other end may be that page's host candidate).
                for page, peer in zip(pages, ids):
                    pair = page.evaluate("id => window.vcall.selectedCandidates(id)", peer)
                    assert pair and "relay" in pair.values(), pair
        finally:
            # bash has exited; coturn and vcall-server, its background jobs, are left in its process group.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(shell.process.pid, signal.SIGTERM)
                deadline = time.monotonic() + 20
                while time.monotonic() < deadline:
                    os.killpg(shell.process.pid, 0)
                    time.sleep(0.2)
                os.killpg(shell.process.pid, signal.SIGKILL)
            shell.stop()
            dns.stop()


# PID 1 of a new PID and mount namespace (inside network namespace T): /etc, /opt and /var become overlays
# whose changes live in a tmpfs, /tmp, /var/tmp, /run and /dev/shm are fresh (systemd's tmpfiles would
# otherwise empty the machine's /tmp), the checkout is at /opt/checkout, units that would change the
# machine's kernel settings are masked; then systemd boots to basic.target (nothing of the machine's own
# is started) and the test enters with nsenter. Killing PID 1 ends every process in it, and its mounts.
SYSTEMD_BOOT = r"""set -e
work=$1 checkout=$2
mount -t tmpfs tmpfs "$work/overlay"
for dir in etc opt var; do
    mkdir -p "$work/overlay/$dir/upper" "$work/overlay/$dir/work"
    mount -t overlay overlay -o "lowerdir=/$dir,upperdir=$work/overlay/$dir/upper,workdir=$work/overlay/$dir/work" "/$dir"
done
mkdir -p /opt/checkout && mount --bind "$checkout" /opt/checkout
for dir in /tmp /var/tmp /run /dev/shm; do mount -t tmpfs tmpfs "$dir"; done
for unit in systemd-sysctl systemd-modules-load systemd-remount-fs; do ln -sf /dev/null "/etc/systemd/system/$unit.service"; done
# Services' own mount namespaces (credentials, PrivateTmp) propagate from a shared root, as on a booted machine.
mount --make-rshared /
export container=vcall-test
exec /lib/systemd/systemd --system --unit=basic.target
"""


def descendant_named(pid: int, name: str, timeout: float) -> int:
    """The first process called `name` among `pid`'s descendants, waiting up to `timeout` for it."""
    deadline = time.monotonic() + timeout
    while True:
        children: dict[int, list[int]] = {}
        names = {}
        for entry in Path("/proc").iterdir():
            with contextlib.suppress(OSError, ValueError):
                if entry.name.isdigit():
                    stat = (entry / "stat").read_text()
                    names[int(entry.name)] = stat[stat.index("(") + 1:stat.rindex(")")]
                    children.setdefault(int(stat[stat.rindex(")") + 2:].split()[1]), []).append(int(entry.name))
        queue = list(children.get(pid, []))
        while queue:
            child = queue.pop(0)
            if names.get(child) == name:
                return child
            queue += children.get(child, [])
        assert time.monotonic() < deadline, f"no {name} under process {pid} after {timeout}s"
        time.sleep(0.1)


def in_booted_namespace(pid1: int, script: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """`script` run by bash -e as root inside systemd's namespaces, in the checkout, with `sudo` being root's
    own shell (the test is root there already)."""
    return subprocess.run(["nsenter", "-t", str(pid1), "-m", "-p", "-n", "bash", "-e", "-c",
                           'cd /opt/checkout\nsudo() { "$@"; }\n' + script], capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


def test_the_readme_systemd_commands_start_units_that_serve_https_and_record_a_room(tmp_path):
    """README's "As services (systemd)" blocks, from the first block's third line on, run as written in a
    machine booted by systemd (namespace T, see SYSTEMD_BOOT), with the manual steps between them done
    the way the README says. Then coturn, vcall-server (HTTPS with its key handed over as a credential, as
    a dynamic user) and vcall-gateway@standup run; a gateway in namespace A joins "standup" over
    wss://calls.example.org as a participant; stopping the unit finalizes her recording and its report.

        A 198.51.100.2 ── 198.51.100.1 T (systemd)
    """
    if shutil.which("nsenter") is None or not Path("/lib/systemd/systemd").exists():
        pytest.fail("this test needs systemd and util-linux (scripts/setup installs them)", pytrace=False)
    first, second = readme_blocks("<!-- systemd:", 2)
    assert first[0] == "scripts/setup" and first[1].startswith("swift build -c release --product vcall-server"), first
    # A checkout as the first two lines leave it, with the test run's binaries as the release ones. Copies,
    # not links: the repository may be under /tmp, which the booted namespace replaces.
    checkout = tmp_path / "checkout"
    release = checkout / ".build" / "release"
    release.mkdir(parents=True)
    for binary in (server_binary(), gateway_binary()):
        with contextlib.suppress(OSError):
            os.link(binary, release / binary.name)
        if not (release / binary.name).exists():
            shutil.copy2(binary, release / binary.name)
    shutil.copytree(server_binary().parent / "vcall_SignalingServer.resources", release / "vcall_SignalingServer.resources")
    shutil.copytree(REPO / "pipelines", checkout / "pipelines")
    shutil.copytree(DEPLOY, checkout / "deploy")
    certificate, _ = self_signed_certificate(checkout, "DNS:calls.example.org", certificate="fullchain.pem",
                                             key="privkey.pem")
    (tmp_path / "overlay").mkdir()
    (tmp_path / "boot.sh").write_text(SYSTEMD_BOOT)
    a, t = (f"vs{x}{os.getpid()}" for x in "AT")
    with network_namespaces([a, t], [(a, t, "198.51.100")], {a: "198.51.100.1"},
                            {a: {"hosts": "127.0.0.1 localhost\n198.51.100.1 calls.example.org\n"}}):
        machine = NamespacedProcess(t, "deploy-systemd", ["unshare", "--pid", "--fork", "--mount", "--mount-proc",
                                                          "--propagation", "private", "bash", str(tmp_path / "boot.sh"),
                                                          str(tmp_path), str(checkout)])
        pid1 = None
        participant = None

        def inside(script: str, timeout: float = 120) -> str:
            done = in_booted_namespace(pid1, script, timeout)
            journal = in_booted_namespace(pid1, "journalctl --no-pager -b -o short-monotonic | tail -60").stdout
            assert done.returncode == 0, f"{script}\n→ {done.returncode}\n{done.stdout}\n{done.stderr}\n--- journal:\n{journal}"
            return done.stdout

        try:
            pid1 = descendant_named(machine.process.pid, "systemd", 20)
            deadline = time.monotonic() + 20
            while not Path(f"/proc/{pid1}/root/run/systemd/private").exists():
                assert machine.process.poll() is None and time.monotonic() < deadline, machine.text()[-3000:]
                time.sleep(0.1)
            state = in_booted_namespace(pid1, "systemctl is-system-running --wait", 60).stdout.strip()
            assert state == "running", f"{state}: {inside('systemctl --failed --no-pager')}{machine.text()[-3000:]}"

            inside("\n".join(first[2:]))
            # "Then put one long random secret in both … your name in place of calls.example.org": the name
            # stays, resolved here by the hosts files; the test's certificate is trusted as a public one.
            secret = os.urandom(32).hex()
            inside(f"sed -i 's/^static-auth-secret=.*/static-auth-secret={secret}/' /etc/turnserver.conf\n"
                   f"sed -i 's/^VCALL_TURN_SECRET=.*/VCALL_TURN_SECRET={secret}/' /etc/vcall/vcall-server.env\n"
                   "echo '198.51.100.1 calls.example.org' >> /etc/hosts\n"
                   "cat /opt/checkout/fullchain.pem >> /etc/ssl/certs/ca-certificates.crt")
            comment = next(i for i, line in enumerate(second) if line.startswith("# put the printed token"))
            printed = inside("\n".join(second[:comment]))
            [token] = re.findall(r"vct_[0-9a-f]+", printed)
            inside(f"sed -i 's/^VCALL_GATEWAY_TOKEN=.*/VCALL_GATEWAY_TOKEN={token}/' /etc/vcall/vcall-gateway.env")
            inside("\n".join(second[comment + 1:]))

            units = "coturn vcall-server vcall-gateway@standup"
            deadline = time.monotonic() + 10
            while (states := in_booted_namespace(pid1, f"systemctl is-active {units}").stdout.split()) != ["active"] * 3:
                assert time.monotonic() < deadline, f"{states}\n{inside(f'systemctl status --no-pager {units} || true')}"
                time.sleep(0.2)
            restarts = inside(f"systemctl show -p NRestarts --value {units}").split()
            assert restarts == ["0"] * 3, f"restarted: {restarts}\n{inside(f'journalctl -b --no-pager -o cat -u vcall-server')}"
            # The server is not root, and reads the key it was handed as a credential.
            uid = inside("stat -c %u /proc/$(systemctl show -p MainPID --value vcall-server)").strip()
            assert uid != "0", "vcall-server runs as root"

            participant = NamespacedProcess(a, "deploy-systemd-ada", [
                str(gateway_binary()), "--room", "standup", "--name", "ada", "--server", "wss://calls.example.org/ws",
                "--ca", str(certificate), "--token", token, "--size", "640x360"])
            deadline = time.monotonic() + 30
            while "first frames of ada written" not in inside("journalctl -u vcall-gateway@standup -o cat --no-pager"):
                assert participant.process.poll() is None and time.monotonic() < deadline, participant.text()[-3000:]
                time.sleep(0.5)
            time.sleep(4)
            inside("systemctl stop vcall-gateway@standup", timeout=60)
            assert inside("systemctl show -p Result --value vcall-gateway@standup").strip() == "success"

            recordings = Path(f"/proc/{pid1}/root/var/lib/private/vcall-gateway/recordings")
            [recording] = recordings.glob("standup-ada-*.webm")
            report = json.loads(recording.with_suffix(".json").read_text())
            assert report["finalizedCleanly"] is True and report["videoCodec"] == "VP8" and report["audioCodec"] == "OPUS"
            assert report["duration"] > 3, report
        finally:
            if participant:
                participant.stop()
            if pid1:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid1, signal.SIGKILL)
            machine.stop()


def test_the_systemd_units_pass_systemd_analyze_verify(tmp_path):
    if shutil.which("systemd-analyze") is None:
        pytest.fail("systemd-analyze is missing (Debian's systemd package)", pytrace=False)
    for name, binary in (("vcall-server.service", server_binary()), ("vcall-gateway@.service", gateway_binary())):
        text = (DEPLOY / "systemd" / name).read_text().replace(f"/opt/vcall/{binary.name}", str(binary))
        (tmp_path / name).write_text(text)
    units = [str(tmp_path / "vcall-server.service"), str(tmp_path / "vcall-gateway@standup.service")]
    result = subprocess.run(["systemd-analyze", "verify", *units], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and not result.stderr.strip(), result.stderr
    # The check is real: a unit with a relative ExecStart fails it.
    (tmp_path / "broken.service").write_text("[Service]\nExecStart=vcall-server --port 1\n")
    broken = subprocess.run(["systemd-analyze", "verify", str(tmp_path / "broken.service")], capture_output=True, text=True)
    assert broken.returncode != 0 or broken.stderr.strip()


def test_the_units_command_lines_run_with_the_example_settings(tmp_path):
    """vcall-server with its unit's command line (port 443 → a free one, calls.example.org → this host),
    coturn with the example turnserver.conf, and a recording gateway with its unit's command line."""
    # Named as the unit's LoadCredential= names them in its credentials directory.
    ca = tmp_path
    self_signed_certificate(ca, "DNS:localhost,IP:127.0.0.1", certificate="tls-cert", key="tls-key")
    port = free_port()
    server_env = environment_file(DEPLOY / "systemd" / "vcall-server.env")
    secret = server_env["VCALL_TURN_SECRET"]
    server_args = server_env["VCALL_SERVER_ARGS"].replace("calls.example.org", "127.0.0.1")
    argv = exec_start(DEPLOY / "systemd" / "vcall-server.service", {
        "STATE_DIRECTORY": str(tmp_path / "state"), "CREDENTIALS_DIRECTORY": str(ca), "VCALL_SERVER_ARGS": server_args})
    argv[0] = str(server_binary())
    argv[argv.index("--port") + 1] = str(port)
    (tmp_path / "state").mkdir()
    turn_conf = (DEPLOY / "systemd" / "turnserver.conf").read_text()
    (tmp_path / "turnserver.conf").write_text(turn_conf + "listening-ip=127.0.0.1\nrelay-ip=127.0.0.1\nallow-loopback-peers\n"
                                              + "denied-peer-ip=0.0.0.0-0.0.0.0\n")
    LOGS.mkdir(parents=True, exist_ok=True)
    started = []
    try:
        turn_log = open(LOGS / "deploy-turnserver.log", "wb")
        started.append(subprocess.Popen(["turnserver", "-c", str(tmp_path / "turnserver.conf"), "--log-file=stdout",
                                         "--simple-log", f"--pidfile={tmp_path / 'turn.pid'}"],
                                        stdout=turn_log, stderr=subprocess.STDOUT, start_new_session=True))
        server_log_path = LOGS / "deploy-server.log"
        server_log = open(server_log_path, "wb")
        started.append(subprocess.Popen(argv, stdout=server_log, stderr=subprocess.STDOUT, start_new_session=True,
                                        env={"VCALL_TURN_SECRET": secret, "PATH": "/usr/bin:/bin"}))
        deadline = time.monotonic() + 30
        while f"listening on https://0.0.0.0:{port}" not in server_log_path.read_text(errors="replace"):
            assert started[-1].poll() is None and time.monotonic() < deadline, server_log_path.read_text(errors="replace")
            time.sleep(0.1)

        # The gateway's unit, with a token made as README says.
        token = subprocess.run([str(server_binary()), "token", "create", "recorder", "--data-dir", str(tmp_path / "state")],
                               capture_output=True, text=True, check=True).stdout.split()[-1]
        gateway_env = environment_file(DEPLOY / "systemd" / "vcall-gateway.env")
        gateway_argv = exec_start(DEPLOY / "systemd" / "vcall-gateway@.service", {
            "VCALL_SERVER_URL": gateway_env["VCALL_SERVER_URL"].replace("calls.example.org", f"localhost:{port}"),
            "VCALL_GATEWAY_TOKEN": token, "STATE_DIRECTORY": str(tmp_path / "gateway"),
            "VCALL_GATEWAY_ARGS": gateway_env["VCALL_GATEWAY_ARGS"] + f" --ca {ca / 'tls-cert'}"})
        gateway_argv = [str(gateway_binary()) if w == "/opt/vcall/vcall-gateway" else w.replace("%i", "standup")
                        for w in gateway_argv]
        gateway_log_path = LOGS / "deploy-gateway.log"
        gateway = subprocess.Popen(gateway_argv, stdin=subprocess.DEVNULL, stdout=open(gateway_log_path, "wb"),
                                   stderr=subprocess.STDOUT, cwd=REPO, start_new_session=True)
        started.append(gateway)
        deadline = time.monotonic() + 30
        while "joining room standup" not in gateway_log_path.read_text(errors="replace"):
            assert gateway.poll() is None and time.monotonic() < deadline, gateway_log_path.read_text(errors="replace")
            time.sleep(0.2)

        # A client over WSS: its welcome carries the TURN server with a credential of its own, which coturn
        # accepts; in room standup it finds the gateway the unit started.
        # The example settings require login (--require-login): this client presents the API token too.
        with WebSocket("localhost", port, ca / "tls-cert", path=f"/ws?token={token}&name=checker") as socket:
            welcome = socket.receive()
            [turn] = welcome["iceServers"]
            assert turn["urls"] == ["turn:127.0.0.1:3478"], turn
            expected = base64.b64encode(hmac.new(secret.encode(), turn["username"].encode(), hashlib.sha1).digest()).decode()
            assert turn["credential"] == expected
            deadline = time.monotonic() + 20
            while True:
                socket.send({"type": "join-room", "roomId": "standup"})
                joined = socket.receive_type("room-joined")
                if any(peer["name"] == "recorder" for peer in joined["peers"]):
                    break
                assert time.monotonic() < deadline, f"the gateway never joined standup: {joined}"
                socket.send({"type": "leave-room"})
                time.sleep(0.5)
        allocated = turn_allocation("127.0.0.1", turn["username"], turn["credential"])
        assert allocated.startswith("allocated"), allocated

        gateway.terminate()
        assert gateway.wait(timeout=30) == 0, gateway_log_path.read_text(errors="replace")
    finally:
        for process in reversed(started):
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()


def test_behind_the_example_nginx_the_server_sees_the_clients_address(tmp_path):
    """deploy/nginx/vcall.conf in front of vcall-server --trusted-proxy 127.0.0.1: a client reaching the
    server through nginx is known by its own address (from X-Forwarded-For, past a forged entry of its
    own); a client connecting directly with the same forged header is known by its socket's address."""
    if shutil.which("nginx") is None:
        pytest.fail("nginx is missing (scripts/setup installs nginx-light)", pytrace=False)
    client, address = "10.231.0.2", "10.231.0.1"
    self_signed_certificate(tmp_path, f"IP:{address}")
    server_port, proxy_port = free_port(), free_port()
    site = (DEPLOY / "nginx" / "vcall.conf").read_text()
    site = site.replace("listen 443 ssl;", f"listen {address}:{proxy_port} ssl;")
    site = site.replace("/etc/vcall/tls/fullchain.pem", str(tmp_path / "cert.pem"))
    site = site.replace("/etc/vcall/tls/privkey.pem", str(tmp_path / "key.pem"))
    site = site.replace("http://127.0.0.1:8080", f"http://127.0.0.1:{server_port}")
    (tmp_path / "vcall.conf").write_text(site)
    (tmp_path / "nginx.conf").write_text(f"""daemon off;
worker_processes 1;
pid {tmp_path / 'nginx.pid'};
error_log {tmp_path / 'error.log'};
events {{}}
http {{
    access_log {tmp_path / 'access.log'};
    client_body_temp_path {tmp_path};
    proxy_temp_path {tmp_path};
    include {tmp_path / 'vcall.conf'};
}}
""")
    LOGS.mkdir(parents=True, exist_ok=True)
    log_path = LOGS / "proxy-server.log"
    server = subprocess.Popen([str(server_binary()), "--host", "0.0.0.0", "--port", str(server_port), "--data-dir",
                               str(tmp_path / "data"), "--trusted-proxy", "127.0.0.1", "--log-level", "debug"],
                              stdout=open(log_path, "wb"), stderr=subprocess.STDOUT, start_new_session=True)
    nginx = subprocess.Popen(["nginx", "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf")],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while "listening on http://0.0.0.0" not in log_path.read_text(errors="replace"):
            assert server.poll() is None and time.monotonic() < deadline, log_path.read_text(errors="replace")
            time.sleep(0.1)
        forged = {"X-Forwarded-For": "6.6.6.6"}
        while True:
            try:
                proxied = WebSocket(address, proxy_port, tmp_path / "cert.pem", source=client, headers=forged)
                break
            except (ConnectionRefusedError, AssertionError):
                assert nginx.poll() is None and time.monotonic() < deadline, nginx.stderr.read().decode() if nginx.stderr else ""
                time.sleep(0.2)
        with proxied:
            via_proxy = proxied.receive()["id"]
        with WebSocket(address, server_port, None, source=client, headers=forged) as direct:
            directly = direct.receive()["id"]
        time.sleep(0.5)
        log = log_path.read_text(errors="replace")
        lines = {peer: [line for line in log.splitlines() if "connection from" in line and f"peer={peer}" in line]
                 for peer in (via_proxy, directly)}
        assert lines[via_proxy] and lines[via_proxy][0].endswith(f"connection from {client}"), lines
        assert lines[directly] and lines[directly][0].endswith(f"connection from {client}"), lines
        assert "6.6.6.6" not in "".join(lines[via_proxy] + lines[directly])
    finally:
        nginx.terminate()
        server.terminate()
        nginx.wait(timeout=10)
        server.wait(timeout=10)
