"""Browsers give the camera and microphone only to secure contexts (https, or localhost). A person who
opens the app at the server's LAN address over plain HTTP must be told why their camera does not start,
and can still join and see the others.

The server listens on every address of the test's network namespace; the page is opened at the
namespace's veth address 10.231.0.1 (scripts/netns-run), which is not localhost.
"""

from __future__ import annotations

import subprocess

import pytest

from app_harness import Server, Users
from app_helpers import new_room_id

LAN_ADDRESS = "10.231.0.1"


def test_plain_http_at_a_lan_address_says_why_the_camera_is_unavailable(browser):
    addresses = subprocess.run(["ip", "-o", "addr"], capture_output=True, text=True).stdout
    if LAN_ADDRESS not in addresses:
        pytest.fail(f"{LAN_ADDRESS} is not on this host: run the tests inside scripts/netns-run", pytrace=False)
    server = Server("--host", "0.0.0.0")
    users = Users(browser, server)
    try:
        page = users.new("lan")
        room = new_room_id()
        page.goto(f"http://{LAN_ADDRESS}:{server.port}/r/{room}?name=Lan")
        page.wait_for_function("() => window.vcall && window.vcall.phase === 'joined'", timeout=20_000)
        assert page.evaluate("() => window.isSecureContext") is False
        notice = page.locator("#notices .notice-error")
        notice.first.wait_for(timeout=10_000)
        text = notice.first.inner_text()
        assert "secure connection (https or localhost)" in text, text
        media = page.evaluate("() => window.vcall.localMedia()")
        assert media["audio"] is False and media["video"] is False, media
        # The same page at localhost is a secure context and gets the (fake) camera.
        local = users.new("local")
        local.goto(f"http://127.0.0.1:{server.port}/r/{room}?name=Local")
        local.wait_for_function("() => window.vcall && window.vcall.phase === 'joined'", timeout=20_000)
        assert local.evaluate("() => window.isSecureContext") is True
        assert local.evaluate("() => window.vcall.localMedia()")["video"] is True
    finally:
        users.close()
        server.stop()
