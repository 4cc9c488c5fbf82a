"""vcall's WebRTCPeer (webrtcbin) and headless Chromium call each other, both sending real media.

Chromium sends its fake camera (VP8) and fake microphone (Opus); vcall sends its VP8 test pattern and
Opus tone. Each test checks both directions decode: Chromium's getStats() (inbound video framesDecoded,
inbound audio packets and samples) and the vcall peer's decoded-frame counts, sampled twice.
It also checks the answer keeps the offer's VP8 and Opus payload types with a=sendrecv on both m-lines:
a mismatch makes webrtcbin turn its own media receive-only ("will only receive").
"""

from __future__ import annotations

import asyncio
import json
import time

from browser_peer import ChromiumPeer
from peer_process import VcallPeer, cancel_all, check_answer_keeps_offer, relay, run_bounded, section_of

SAMPLE_GAP = 2.0  # seconds between the two samples that must show frames rising


async def check_both_directions(chrome: ChromiumPeer, vcall: VcallPeer, negotiated_at: float, label: str) -> None:
    await vcall.wait_connected(15)
    connected_at = time.monotonic()

    def chrome_receives(s: dict) -> bool:
        video, audio = s["inbound"].get("video") or {}, s["inbound"].get("audio") or {}
        return (video.get("framesDecoded") or 0) > 0 and (audio.get("packetsReceived") or 0) > 0

    _, chrome_first_at = await chrome.wait_inbound(15, "inbound video frames and audio packets", chrome_receives)
    await vcall.wait_frames(1, 1, 15, "its first decoded video and audio frames")

    first = await chrome.stats()
    vcall_first = vcall.frames
    await asyncio.sleep(SAMPLE_GAP)
    second = await chrome.stats()
    vcall_second = vcall.frames
    vcall_stats = await vcall.stats()

    # Chromium receives what vcall sends.
    v1, v2 = first["inbound"]["video"], second["inbound"]["video"]
    a1, a2 = first["inbound"]["audio"], second["inbound"]["audio"]
    assert (v2["codec"] or "").lower() == "video/vp8", f"Chromium receives video as {v2['codec']}, expected VP8"
    assert (a2["codec"] or "").lower() == "audio/opus", f"Chromium receives audio as {a2['codec']}, expected Opus"
    assert v2["framesDecoded"] > v1["framesDecoded"], f"Chromium stopped decoding vcall's video: {v1} -> {v2}"
    assert v2["framesDecoded"] - v1["framesDecoded"] >= 10, f"Chromium decodes vcall's video too slowly: {v1} -> {v2}"
    assert a2["packetsReceived"] > a1["packetsReceived"], f"Chromium stopped receiving vcall's audio: {a1} -> {a2}"
    assert (a2.get("totalSamplesReceived") or 0) > (a1.get("totalSamplesReceived") or 0), (
        f"Chromium receives vcall's audio packets but decodes no samples: {a1} -> {a2}")

    # vcall receives what Chromium sends.
    kinds = {t["kind"]: t["codec"] for t in vcall.tracks}
    assert kinds == {"video": "VP8", "audio": "OPUS"}, f"vcall's remote tracks: {vcall.tracks}"
    assert vcall_second[0] > vcall_first[0], f"vcall stopped decoding Chromium's video: {vcall_first} -> {vcall_second}"
    assert vcall_second[0] - vcall_first[0] >= 10, f"vcall decodes Chromium's video too slowly: {vcall_first} -> {vcall_second}"
    assert vcall_second[1] > vcall_first[1], f"vcall stopped decoding Chromium's audio: {vcall_first} -> {vcall_second}"
    assert vcall.errors == [], f"vcall reported errors: {vcall.errors}"

    print(f"\n[{label}] connected {connected_at - negotiated_at:.2f} s after the answer was applied")
    print(f"[{label}] time to first frame: Chromium (vcall's video+audio) {chrome_first_at - negotiated_at:.2f} s, "
          f"vcall (Chromium's video) {vcall.first_video_frame_at - negotiated_at:.2f} s, "
          f"(audio) {vcall.first_audio_frame_at - negotiated_at:.2f} s")
    print(f"[{label}] Chromium decoded vcall video frames {v1['framesDecoded']} -> {v2['framesDecoded']}, "
          f"audio packets {a1['packetsReceived']} -> {a2['packetsReceived']}, "
          f"samples {a1.get('totalSamplesReceived')} -> {a2.get('totalSamplesReceived')} in {SAMPLE_GAP:.0f} s")
    print(f"[{label}] vcall decoded Chromium video frames {vcall_first[0]} -> {vcall_second[0]}, "
          f"audio frames {vcall_first[1]} -> {vcall_second[1]} in {SAMPLE_GAP:.0f} s")
    print(f"[{label}] vcall stats {json.dumps(vcall_stats)}")


def test_chromium_offers_vcall_answers_both_directions_decode() -> None:
    async def scenario() -> None:
        vcall = VcallPeer(role="answer", name="vcall-answerer")
        relays: list[asyncio.Task] = []
        try:
            await vcall.start()
            async with ChromiumPeer() as chrome:
                offer = await chrome.make_offer()
                await vcall.send_description("offer", offer)
                relays.append(asyncio.create_task(relay(chrome.candidates, vcall.send_candidate)))
                relays.append(asyncio.create_task(relay(vcall.candidates, chrome.add_remote_candidate)))
                answer = await vcall.wait_description("answer")
                payload_types = check_answer_keeps_offer(offer, answer, "vcall")
                await chrome.accept_answer(answer)
                negotiated_at = time.monotonic()
                print(f"\n[chromium offers] answer keeps Chromium's payload types {payload_types}, a=sendrecv on both")
                try:
                    await check_both_directions(chrome, vcall, negotiated_at, "chromium offers")
                except AssertionError as failure:
                    raise AssertionError(f"{failure}\nChromium page events: {await chrome.events()}\n"
                                         + vcall.diagnostics()) from None
        finally:
            await cancel_all(*relays)
            await vcall.close()

    run_bounded(scenario)


def test_vcall_offers_chromium_answers_both_directions_decode() -> None:
    async def scenario() -> None:
        vcall = VcallPeer(role="offer", name="vcall-offerer")
        relays: list[asyncio.Task] = []
        try:
            await vcall.start()
            async with ChromiumPeer() as chrome:
                offer = await vcall.wait_description("offer")
                for kind in ("video", "audio"):
                    assert f"m={kind} " in offer, f"vcall's offer has no {kind} m-line:\n{offer}"
                relays.append(asyncio.create_task(relay(vcall.candidates, chrome.add_remote_candidate)))
                try:
                    answer = await chrome.accept_offer(offer)
                except Exception as error:
                    raise AssertionError(f"Chromium refused vcall's offer: {error}\n--- vcall's offer ---\n{offer}\n"
                                         + vcall.diagnostics()) from None
                await vcall.send_description("answer", answer)
                relays.append(asyncio.create_task(relay(chrome.candidates, vcall.send_candidate)))
                negotiated_at = time.monotonic()
                payload_types = check_answer_keeps_offer(offer, answer, "Chromium")
                # vcall offers to send as well as receive.
                for kind in ("video", "audio"):
                    assert section_of(offer, kind).direction == "sendrecv", f"vcall's offer:\n{offer}"
                print(f"\n[vcall offers] Chromium's answer keeps vcall's payload types {payload_types}, a=sendrecv on both")
                try:
                    await check_both_directions(chrome, vcall, negotiated_at, "vcall offers")
                except AssertionError as failure:
                    raise AssertionError(f"{failure}\nChromium page events: {await chrome.events()}\n"
                                         + vcall.diagnostics()) from None
        finally:
            await cancel_all(*relays)
            await vcall.close()

    run_bounded(scenario)
