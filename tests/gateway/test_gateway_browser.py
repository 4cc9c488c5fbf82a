"""A browser and vcall-gateway in one call: the browser plays the gateway's video, the gateway
receives the browser's, and `status` reports the call."""

from __future__ import annotations

import pytest

from app_harness import Users, free_port
from app_helpers import assert_video_playing, join, new_room_id, peer_id_by_name, wait_connected
from gateway_harness import Gateway


@pytest.fixture
def gateway_and_users(browser):
    room = new_room_id()
    gateway = Gateway("bot", room, port=free_port())
    users = Users(browser, gateway)
    yield gateway, users, room
    users.close()
    gateway.stop()


def test_browser_plays_the_gateways_video_and_the_gateway_sees_it_connected(gateway_and_users):
    gateway, users, room = gateway_and_users
    alice = users.new("alice")
    join(alice, room, "alice")
    wait_connected(alice, 1)
    bot = peer_id_by_name(alice, "bot")
    assert_video_playing(alice, bot)
    status = gateway.status()
    assert "alice" in status and "connected" in status, status
    # The browser joined second, so it offered; the gateway answered and sent no offer of its own.
    assert "offers sent 0" in status, status
