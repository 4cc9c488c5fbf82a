"""Layout at phone width (375 px) and on a desktop (1280 px), with screenshots kept as test output."""

from __future__ import annotations

import pytest

from app_helpers import join, new_room_id, wait_connected, assert_video_playing

SIZES = {"phone": (375, 740), "desktop": (1280, 800)}


def assert_fits(page, label):
    overflow = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"{label}: the page is {overflow}px wider than the viewport"
    # Every control is on screen and big enough to tap.
    for box in page.evaluate(
        """() => [...document.querySelectorAll('button:not([hidden])')]
            .filter((b) => b.offsetParent !== null)
            .map((b) => { const r = b.getBoundingClientRect(); return {id: b.id || b.textContent.trim(), left: r.left, right: r.right, h: r.height}; })"""
    ):
        assert box["left"] >= 0 and box["right"] <= page.viewport_size["width"] + 0.5, f"{label}: {box} off screen"
        assert box["h"] >= 28, f"{label}: {box} too small to tap"


@pytest.mark.parametrize("size", list(SIZES))
def test_home_layout(users, screenshots, size):
    width, height = SIZES[size]
    page = users.new("home", width, height)
    other = users.new("other")
    other.goto("/?name=other")
    page.goto("/?name=me")
    page.wait_for_selector(".user .call-button")
    assert_fits(page, f"home {size}")
    page.screenshot(path=str(screenshots / f"home-{width}.png"), full_page=True)


@pytest.mark.parametrize("size", list(SIZES))
def test_room_layout(users, screenshots, size):
    width, height = SIZES[size]
    room = new_room_id()
    me = users.new("me", width, height)
    join(me, room, "Maria")
    others = []
    for name in ("Jonas", "Priya"):
        page = users.new(name)
        join(page, room, name)
        others.append(page)
    wait_connected(me, 2)
    for pid in me.evaluate("() => window.vcall.peerIds()"):
        assert_video_playing(me, pid)
    others[1].click("#toggle-mic")
    me.wait_for_selector('.tile.remote[data-audio="false"]')
    me.wait_for_function("() => document.querySelectorAll('#notices .notice').length === 0", timeout=10_000)
    assert_fits(me, f"room {size}")
    # The controls stay visible without scrolling.
    controls = me.locator(".controls").bounding_box()
    assert controls and controls["y"] + controls["height"] <= height + 0.5
    me.screenshot(path=str(screenshots / f"room-{width}.png"))

    others[0].close()
    me.wait_for_function("() => window.vcall.peerIds().length === 1")
    me.wait_for_function("() => document.querySelectorAll('#notices .notice').length === 0", timeout=10_000)
    me.screenshot(path=str(screenshots / f"room-two-{width}.png"))


def test_full_room_message_layout(users, screenshots):
    room = new_room_id()
    a = users.new("a")
    b = users.new("b")
    join(a, room, "a", capacity=2)
    join(b, room, "b")
    phone = users.new("phone", *SIZES["phone"])
    phone.goto(f"/r/{room}?name=phone")
    phone.wait_for_selector("#message:not([hidden])")
    assert_fits(phone, "full room")
    phone.screenshot(path=str(screenshots / "full-room-375.png"))


def test_incoming_call_on_a_phone(users, screenshots):
    callee = users.new("callee", *SIZES["phone"])
    caller = users.new("caller")
    callee.goto("/?name=callee")
    caller.goto("/?name=caller")
    callee.wait_for_function("() => window.vcall.connected && window.vcall.selfId")
    callee_id = callee.evaluate("() => window.vcall.selfId")
    caller.click(f'.user[data-user-id="{callee_id}"] .call-button')
    callee.wait_for_selector('#call-dialog[open][data-kind="incoming"]')
    assert_fits(callee, "incoming call")
    assert callee.locator("#call-accept").is_visible() and callee.locator("#call-reject").is_visible()
    assert not callee.locator("#call-cancel").is_visible()
    assert caller.locator("#call-cancel").is_visible()
    assert not caller.locator("#call-accept").is_visible() and not caller.locator("#call-reject").is_visible()
    for button in ("#call-accept", "#call-reject"):
        box = callee.locator(button).bounding_box()
        assert box and box["x"] >= 0 and box["x"] + box["width"] <= SIZES["phone"][0]
    callee.screenshot(path=str(screenshots / "incoming-call-375.png"))
    caller.screenshot(path=str(screenshots / "ringing-1280.png"))
    callee.click("#call-reject")
    caller.wait_for_selector("#notices .notice:has-text('declined your call')")
