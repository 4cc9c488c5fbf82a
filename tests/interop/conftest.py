"""Interop tests: vcall's WebRTCPeer (the `vcall-interop-peer` binary) against headless Chromium and aiortc.

Run them inside the private network namespace, where the peers' host candidates (10.231.0.1/.2) live:

    scripts/netns-run .venv/bin/python -m pytest tests/interop -v

libnice never gathers loopback candidates, so outside that namespace there is nothing the peers may
connect over. The peer binary comes from $VCALL_INTEROP_PEER_BIN, else
<repo>/.build/debug/vcall-interop-peer (`swift build --product vcall-interop-peer`). Each test is
failed after $VCALL_INTEROP_TIMEOUT seconds (default 30) and stops every process it started.
Each vcall peer's stderr (its --log-level debug log, plus GStreamer's if GST_DEBUG is set, e.g.
GST_DEBUG=webrtcbin:5,dtls*:5) is kept in <repo>/test-output/interop/<peer name>.log, its tail in failures.
"""

from __future__ import annotations

import os

import pytest

from peer_process import peer_binary


@pytest.fixture(autouse=True)
def interop_environment() -> None:
    if os.environ.get("VCALL_IN_NETNS") != "1":
        pytest.fail("interop tests must run inside the test network namespace: "
                    "scripts/netns-run .venv/bin/python -m pytest tests/interop", pytrace=False)
    binary = peer_binary()
    if not binary.is_file() or not os.access(binary, os.X_OK):
        pytest.fail(f"vcall-interop-peer not found at {binary}: build it with "
                    "`swift build --product vcall-interop-peer` or set VCALL_INTEROP_PEER_BIN", pytrace=False)
