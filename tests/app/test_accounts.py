"""Accounts in the web app: register, log in, stay logged in across a reload, log out."""

from __future__ import annotations

import secrets

from app_helpers import register


def test_register_login_reload_logout(users):
    page = users.new("user")
    username = "user" + secrets.token_hex(4)
    password = "pw-" + secrets.token_hex(8)
    page.goto("/")
    page.wait_for_function("() => window.vcall && window.vcall.connected")
    assert page.locator("#account-status").inner_text() == "Guest"

    page.fill("#username", username)
    page.fill("#password", password)
    page.click("#register")
    page.wait_for_selector("#signed-in:not([hidden])")
    assert page.locator("#me-name").inner_text() == username

    page.reload()
    page.wait_for_selector("#signed-in:not([hidden])")
    assert page.locator("#account-status").inner_text() == f"Signed in as {username}"
    # The signed-in user appears under the account's name.
    page.wait_for_function("(u) => document.getElementById('presence-name').textContent === u", arg=username)

    page.click("#logout")
    page.wait_for_selector("#signed-out:not([hidden])")
    page.reload()
    page.wait_for_selector("#signed-out:not([hidden])")
    assert page.locator("#account-status").inner_text() == "Guest"

    page.fill("#username", username)
    page.fill("#password", "wrong-password")
    page.click("#login")
    page.wait_for_function("() => document.getElementById('auth-error').textContent.length > 0")
    assert page.locator("#signed-out").is_visible()

    page.fill("#password", password)
    page.click("#login")
    page.wait_for_selector("#signed-in:not([hidden])")
    page.reload()
    page.wait_for_selector("#signed-in:not([hidden])")
    assert page.locator("#me-name").inner_text() == username


def test_signed_in_user_joins_a_room_under_their_name(users):
    page = users.new("user")
    username = register(page, prefix="user")
    page.evaluate("() => localStorage.clear()")

    page.goto("/r/" + secrets.token_urlsafe(12))
    page.wait_for_function("() => window.vcall.phase === 'joined'")
    assert page.locator("#name-prompt").is_hidden()
    assert page.locator("#local-name").inner_text() == f"{username} (you)"


def test_guest_is_asked_for_a_name(users, screenshots):
    page = users.new("guest", 375, 740)
    page.goto("/r/" + secrets.token_urlsafe(12))
    page.wait_for_selector("#name-prompt:not([hidden])")
    page.screenshot(path=str(screenshots / "name-prompt-375.png"))
    page.fill("#guest-name", "Gus")
    page.click("#join-button")
    page.wait_for_function("() => window.vcall.phase === 'joined'")
    assert page.locator("#local-name").inner_text() == "Gus (you)"
