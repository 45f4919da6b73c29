"""Signing in to the console in a real browser, with the keyboard only, and signing out."""

from __future__ import annotations

import re

from playwright.sync_api import expect


def test_sign_in_with_the_keyboard(page, alice, shot):
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/login"))
    expect(page).to_have_title("Sign in · gpuyard")
    key_field = page.get_by_label("API key")
    expect(key_field).to_be_focused()  # autofocus: typing straight away works
    shot("sign-in")

    # A wrong key: the error sits next to the field, which is marked invalid and points at it.
    page.keyboard.type("not-a-real-key")
    page.keyboard.press("Enter")
    expect(page).to_have_title("Sign in · gpuyard")
    error = page.locator("#api_key-error")
    expect(error).to_contain_text("not valid")
    expect(error).to_have_attribute("role", "alert")
    expect(key_field).to_have_attribute("aria-invalid", "true")
    expect(key_field).to_have_attribute("aria-describedby", "api_key-error")
    shot("sign-in-error")

    # The right key lands on the templates page, signed in as alice.
    key_field.focus()
    expect(key_field).to_be_focused()
    page.keyboard.type(alice.key)
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/templates$"))
    expect(page).to_have_title("Templates · gpuyard")
    expect(page.get_by_role("heading", level=1)).to_have_text("Templates")
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    expect(page.get_by_text("alice", exact=True)).to_be_visible()


def test_signing_out_ends_the_session_for_a_copied_cookie_too(signed_in, browser, live_server):
    copied = signed_in.context.cookies()
    assert any(c["name"] == "gpuyard_session" for c in copied)
    signed_in.get_by_role("button", name="Sign out").click()
    expect(signed_in).to_have_url(re.compile(r"/login"))

    other = browser.new_context(base_url=live_server)  # another browser, given the old cookie
    try:
        other.add_cookies(copied)
        tab = other.new_page()
        tab.goto("/templates")
        expect(tab).to_have_url(re.compile(r"/login\?next=/templates$"))
        expect(tab).to_have_title("Sign in · gpuyard")
    finally:
        other.close()
