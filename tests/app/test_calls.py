"""Direct 1-on-1 calls from the home page's list of online users: accepted, rejected, hung up."""

from __future__ import annotations

import re

from app_helpers import assert_video_playing, wait_connected


def online_pair(users):
    """Two users on the home page who see each other in the online list; returns pages and ids."""
    caller = users.new("caller")
    callee = users.new("callee")
    caller.goto("/?name=caller")
    callee.goto("/?name=callee")
    ids = {}
    for label, page in (("caller", caller), ("callee", callee)):
        page.wait_for_function("() => window.vcall.connected && window.vcall.selfId")
        ids[label] = page.evaluate("() => window.vcall.selfId")
    caller.wait_for_selector(f'.user[data-user-id="{ids["callee"]}"] .call-button:not([disabled])')
    callee.wait_for_selector(f'.user[data-user-id="{ids["caller"]}"]')
    return caller, callee, ids


def ring(caller, callee, ids):
    caller.click(f'.user[data-user-id="{ids["callee"]}"] .call-button')
    caller.wait_for_selector('#call-dialog[open][data-kind="outgoing"]')
    assert caller.locator("#call-title").inner_text().startswith("Calling")
    callee.wait_for_selector('#call-dialog[open][data-kind="incoming"]')
    assert "is calling you" in callee.locator("#call-title").inner_text()
    return caller.evaluate("() => window.vcall.call.roomId")


def test_direct_call_accepted_then_hung_up(users):
    caller, callee, ids = online_pair(users)
    room = ring(caller, callee, ids)
    assert callee.evaluate("() => window.vcall.call.roomId") == room

    callee.click("#call-accept")
    for page in (caller, callee):
        page.wait_for_url(re.compile(rf"/r/{re.escape(room)}\?"))
        page.wait_for_function("() => window.vcall.page === 'room' && window.vcall.phase === 'joined'")
    for page in (caller, callee):
        [pid] = wait_connected(page, 1)
        assert_video_playing(page, pid)

    # The call's room holds two: a third person is turned away.
    intruder = users.new("intruder")
    intruder.goto(f"/r/{room}?name=intruder")
    intruder.wait_for_selector("#message:not([hidden])")
    assert intruder.locator("#message-title").inner_text() == "This room is full"

    caller.click("#hang-up")
    callee.wait_for_selector("#message:not([hidden])")
    assert callee.locator("#message-title").inner_text() == "Call ended"
    assert "hung up" in callee.locator("#message-text").inner_text()
    assert caller.locator("#message-title").inner_text() == "Call ended"
    assert callee.locator(".tile.remote").count() == 0


def test_direct_call_rejected(users):
    caller, callee, ids = online_pair(users)
    ring(caller, callee, ids)
    callee.click("#call-reject")
    caller.wait_for_selector("#notices .notice:has-text('declined your call')")
    caller.wait_for_selector("#call-dialog:not([open])", state="attached")
    assert caller.evaluate("() => window.vcall.call") is None
    assert callee.evaluate("() => window.vcall.call") is None
    # Both stay on the home page and can call again.
    assert caller.evaluate("() => window.vcall.page") == "home"
    caller.wait_for_selector(f'.user[data-user-id="{ids["callee"]}"] .call-button:not([disabled])')


def test_direct_call_hung_up_while_ringing(users):
    caller, callee, ids = online_pair(users)
    ring(caller, callee, ids)
    caller.click("#call-cancel")
    callee.wait_for_selector("#notices .notice:has-text('hung up')")
    callee.wait_for_selector("#call-dialog:not([open])", state="attached")
    assert callee.evaluate("() => window.vcall.call") is None
    assert caller.evaluate("() => window.vcall.call") is None
