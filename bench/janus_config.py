"""Configuration for a throwaway Janus 1.1.2 (Debian's `janus` package) used as a benchmark baseline:
VideoRoom plugin and plain WebSocket transport only, host ICE candidates from one interface only.

    folder = Path(tempfile.mkdtemp())
    cmd = write_janus_config(folder, ws_port=free_port())
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    # ws://127.0.0.1:<ws_port>, subprotocol "janus-protocol"; listening once "Websockets server started" is logged

Janus (src/ice.c) never gathers on a loopback interface, and when nothing else matches its
ice_enforce_list libnice falls back to every non-loopback address of the machine. So Janus must run
inside `scripts/netns-run`, where the veth pair vcall0 (10.231.0.1) <-> vcall1 (10.231.0.2) is all there
is besides lo; write_janus_config() refuses to write a config when the interface is missing.
The templates are the files in bench/janus/ (see bench/janus/README.md for the message flow).
"""

from __future__ import annotations

import re
import shutil
import socket
from pathlib import Path

TEMPLATES = Path(__file__).resolve().parent / "janus"
FILES = ("janus.jcfg", "janus.plugin.videoroom.jcfg", "janus.transport.websockets.jcfg")
KEEP = {"plugins": "libjanus_videoroom.so", "transports": "libjanus_websockets.so", "loggers": None}


def _module_folder(kind: str) -> Path:
    """Debian's folder for plugins/transports/loggers, e.g. /usr/lib/x86_64-linux-gnu/janus/plugins."""
    found = sorted(Path("/usr/lib").glob(f"*/janus/{kind}")) + [Path("/usr/lib/janus") / kind]
    for folder in found:
        if folder.is_dir():
            return folder
    raise FileNotFoundError(f"no Janus {kind} folder under /usr/lib (apt-get install janus)")


def _interface_address(name: str) -> str:
    """IPv4 address of a local interface, or an error explaining that Janus must run in the netns."""
    if name not in {n for _, n in socket.if_nameindex()}:
        raise RuntimeError(
            f"interface {name!r} is missing: run under scripts/netns-run (Janus skips loopback, and without "
            f"a matching interface libnice would gather candidates on every other address of the machine)")
    import fcntl
    import struct
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        packed = fcntl.ioctl(s.fileno(), 0x8915, struct.pack("256s", name.encode()[:15]))  # SIOCGIFADDR
    return socket.inet_ntoa(packed[20:24])


def write_janus_config(folder: Path, ws_port: int, *, ice_interface: str = "vcall0",
                       debug_level: int = 4) -> list[str]:
    """Write janus.jcfg, janus.plugin.videoroom.jcfg and janus.transport.websockets.jcfg into `folder`
    (the WebSocket server on ws://127.0.0.1:`ws_port`, ICE host candidates on `ice_interface` only) and
    return the command line that starts Janus with them, logging to stdout."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    address = _interface_address(ice_interface)
    janus = shutil.which("janus") or "/usr/bin/janus"

    text = (TEMPLATES / "janus.jcfg").read_text()
    for kind, keep in KEEP.items():
        src = _module_folder(kind)
        names = sorted(p.name for p in src.iterdir() if p.name.endswith(".so"))  # Janus loads only *.so
        if keep is not None and keep not in names:
            raise FileNotFoundError(f"{keep} is not in {src}")
        disable = ",".join(n for n in names if n != keep)
        text = re.sub(rf'(\t{kind}_folder = )"[^"]*"', rf'\1"{src}"', text)
        text = re.sub(rf'({kind}: \{{\n(?:\t#[^\n]*\n)*\tdisable = )"[^"]*"', rf'\1"{disable}"', text)
    text = re.sub(r'(\tevents_folder = )"[^"]*"', rf'\1"{_module_folder("events")}"', text)
    text = re.sub(r'(\tice_enforce_list = )"[^"]*"', rf'\1"{ice_interface}"', text)
    text = re.sub(r'(\tinterface = )"[^"]*"', rf'\1"{address}"', text)
    text = re.sub(r'(\tdebug_level = )\d+', rf'\g<1>{int(debug_level)}', text)
    (folder / "janus.jcfg").write_text(text)

    ws = (TEMPLATES / "janus.transport.websockets.jcfg").read_text()
    ws, n = re.subn(r'(\tws_port = )\d+', rf'\g<1>{int(ws_port)}', ws)
    assert n == 1, "ws_port not found in the template"
    (folder / "janus.transport.websockets.jcfg").write_text(ws)
    shutil.copyfile(TEMPLATES / "janus.plugin.videoroom.jcfg", folder / "janus.plugin.videoroom.jcfg")

    return [janus, f"--configs-folder={folder}", "--disable-colors", "--debug-timestamps"]


if __name__ == "__main__":
    import argparse
    parser = argparse.ArgumentParser(description="write a benchmark Janus config and print its command line")
    parser.add_argument("folder", type=Path)
    parser.add_argument("ws_port", type=int)
    parser.add_argument("--ice-interface", default="vcall0")
    args = parser.parse_args()
    print(" ".join(write_janus_config(args.folder, args.ws_port, ice_interface=args.ice_interface)))
