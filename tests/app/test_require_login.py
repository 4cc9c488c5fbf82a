"""A server started with --require-login: guests are told to sign in, signed-in users join."""

from __future__ import annotations

import secrets

import pytest

from app_harness import Server, Users
from app_helpers import assert_video_playing, register, wait_connected


@pytest.fixture(scope="module")
def login_server():
    s = Server("--require-login")
    yield s
    s.stop()


@pytest.fixture
def login_users(browser, login_server):
    u = Users(browser, login_server)
    yield u
    u.close()


def test_guest_is_asked_to_sign_in_and_members_can_call(login_users):
    room = secrets.token_urlsafe(12)
    guest = login_users.new("guest")
    guest.goto(f"/r/{room}?name=guest")
    guest.wait_for_selector("#message:not([hidden])")
    assert guest.locator("#message-title").inner_text() == "Sign in to join"
    assert "Sign in" in guest.locator("#message-text").inner_text()

    alice = login_users.new("alice")
    bob = login_users.new("bob")
    alice_name = register(alice)
    bob_name = register(bob)
    # Signed-in users see each other online under their account names.
    alice.wait_for_selector(f'.user[data-user-name="{bob_name}"]')

    alice.goto(f"/r/{room}")
    bob.goto(f"/r/{room}")
    for page, other in ((alice, bob_name), (bob, alice_name)):
        page.wait_for_function("() => window.vcall.phase === 'joined'")
        [pid] = wait_connected(page, 1)
        assert page.evaluate("() => window.vcall.peers()")[pid]["name"] == other
        assert_video_playing(page, pid)

    # A signed-in user can make an API token for programs.
    alice.goto("/")
    alice.click("#make-token")
    alice.wait_for_selector("#token-output:not([hidden])")
    assert len(alice.locator("#token-output").inner_text().split()[0]) >= 16
