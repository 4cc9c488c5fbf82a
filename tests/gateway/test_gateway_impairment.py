"""A minute of a call over a lossy, jittery path (5 % loss, 30–100 ms delay each way, in user space:
tests/gateway/impairment_relay.py), recorded by the far side: the file holds no undecodable frame
(NACK retransmissions and keyframe requests recover) and its report lists the gaps. Slow (about 80 s):
run by scripts/faults, not by scripts/test.

Four network namespaces, none forwarding; the recorder's only way out is the impairing relay in R:

    sender A 10.77.1.2 ── 10.77.1.1 T 10.77.3.1 ── 10.77.3.2 R 10.77.2.1 ── 10.77.2.2 B recorder
                          coturn, vcall-server       impairment relay (UDP → coturn, TCP → vcall-server)
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

from gateway_harness import decodes_cleanly, video_packets
from test_gateway_turn import NamespacedProcess, RelayedCall, network_namespaces

pytestmark = pytest.mark.faults
LATENCY: list[str] = []  # the recorder's --latency; 400 recovered no more than the default 200 here
RELAY = Path(__file__).resolve().parent / "impairment_relay.py"


@pytest.fixture
def chain():
    a, t, r, b = (f"vc{x}{os.getpid()}" for x in "ATRB")
    with network_namespaces([a, t, r, b], [(a, t, "10.77.1"), (r, t, "10.77.3"), (b, r, "10.77.2")],
                            {a: "10.77.1.1", b: "10.77.2.1"}):
        yield a, t, r, b


def test_a_minute_at_5_percent_loss_and_30_to_100_ms_jitter_records_only_decodable_frames(chain):
    a, t, r, b = chain
    work = Path(tempfile.mkdtemp(prefix="vcall-impaired-"))
    call = None
    relay_holder: list[NamespacedProcess] = []

    def start_relay(call: RelayedCall) -> None:
        # The recorder's only way out: UDP to coturn impaired, TCP to vcall-server as it is.
        relay = call.start(r, "impairment-relay", [sys.executable, str(RELAY), "--listen", "10.77.2.1:3490",
                                                   "--upstream", "10.77.3.1:3478", "--loss", "0.05", "--delay", "30-100",
                                                   "--tcp", "10.77.2.1:18300=10.77.3.1:18300"])
        relay.wait_for("relay 10.77.2.1:3490", 10)
        relay_holder.append(relay)

    try:
        call = RelayedCall("impaired", work, t, ["10.77.1.1", "10.77.3.1"], b, "10.77.2.1", "10.77.2.1:3490",
                           a, "10.77.1.1", "10.77.1.1:3478", recorder_args=tuple(LATENCY), before_gateways=start_relay)
        path = call.record_for(60)
        [relay] = relay_holder
        relay.stop()
        # Every packet to and from the recorder crossed the relay: thousands, 5 % of them dropped.
        counts = re.search(r"relay: (\d+) datagrams passed, (\d+) dropped", relay.text())
        assert counts and int(counts.group(1)) > 3000, relay.text()
        packets = video_packets(path)
        errors = decodes_cleanly(path)
        report = json.loads(path.with_suffix(".json").read_text())
        print(f"\n{relay.text().splitlines()[-1]}\nrecorded {report['duration']:.1f} s, {report['videoFrames']} frames, "
              f"{report['keyframes']} keyframes, gaps {report['videoGaps']}")
        assert errors == "", errors[:2000]
        assert report["duration"] > 55 and packets[0][1]
        # The report lists every stall over 0.5 s, each a real interval of the file.
        assert all(0 <= gap["start"] < gap["end"] <= report["duration"] + 0.5 for gap in report["videoGaps"]), report
        # At 30 fps a minute holds ~1,800 frames. Measured here: ~1,050–1,160, with 11–15 stalls of
        # 0.5–1.6 s, each ended by a keyframe: loss is concealed by keyframe requests, not yet repaired
        # by retransmission (see the README). Most of the minute must still be there.
        assert report["videoFrames"] > 900, report
    finally:
        if call:
            call.stop()
        shutil.rmtree(work, ignore_errors=True)
