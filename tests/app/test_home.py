"""The home page: create a room, join one by id or link."""

from __future__ import annotations

import re

from app_helpers import new_room_id


def test_create_room_opens_a_fresh_unguessable_room(users):
    page = users.new("me")
    page.goto("/?name=me")
    page.click("#create-room")
    page.wait_for_url(re.compile(r"/r/[A-Za-z0-9_-]{16}$"))
    first = page.url
    page.wait_for_function("() => window.vcall.phase === 'joined'")
    page.goto("/")
    page.click("#create-room")
    page.wait_for_url(re.compile(r"/r/[A-Za-z0-9_-]{16}$"))
    assert page.url != first


def test_join_by_id_or_link(users, server):
    page = users.new("me")
    room = new_room_id()
    page.goto("/?name=me")
    page.fill("#room-id", "not a room!")
    page.click("#join-room")
    assert "not a room id" in page.locator("#join-error").inner_text()
    page.fill("#room-id", f"{server.url}/r/{room}")
    page.click("#join-room")
    page.wait_for_url(re.compile(rf"/r/{room}$"))
    page.wait_for_function("() => window.vcall.phase === 'joined'")
    assert page.locator("#room-name").inner_text() == room
