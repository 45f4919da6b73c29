"""The Keys page's permission picker and the Secrets page's reveal button in a real browser."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

KEY = re.compile(r"^[0-9a-f]{64}$")


def test_create_a_key_with_the_permission_picker(signed_in: Page, shot):
    page = signed_in
    page.get_by_role("link", name="Keys").click()
    expect(page).to_have_title("API keys · gpuyard")
    preview = page.locator("#permission-preview")
    expect(preview).to_have_text("(tick at least one category)")

    page.get_by_label("Name").fill("ci reader")
    page.get_by_label("misc").check()
    page.get_by_label("instance_read").check()
    expect(preview).to_have_text('{"api":{"instance_read":{},"misc":{}}}')
    page.get_by_label("Full access (every call, also ones added later)").check()
    expect(preview).to_have_text("no permission document (a full key)")
    page.get_by_label("user_read").check()  # ticking a category chooses "only the categories ticked"
    expect(page.get_by_label("Only the categories ticked below")).to_be_checked()
    page.get_by_label("user_read").uncheck()
    expect(preview).to_have_text('{"api":{"instance_read":{},"misc":{}}}')
    shot("keys-picker")
    page.get_by_role("button", name="Create key").click()

    created = page.get_by_role("status").filter(has_text="created")
    expect(created).to_contain_text(re.compile(r"Key \d+ created"))
    key_id = re.search(r"Key (\d+) created", created.inner_text())[1]
    key = page.locator("#new-key").inner_text().strip()
    assert KEY.match(key), key
    expect(created).to_contain_text("It may call: instance_read; misc")
    expect(page.get_by_role("button", name="Copy key")).to_be_visible()
    row = page.locator(f"#key-{key_id}")
    expect(row).to_contain_text("ci reader")
    expect(row).to_contain_text("instance_read; misc")
    expect(row).to_contain_text("never")
    shot("keys-created")

    page.goto("/keys")  # the key's text is not shown again
    expect(page.locator("#new-key")).to_have_count(0)
    assert key not in page.content()

    page.on("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name=f"Delete API key {key_id} ci reader").click()
    expect(page.locator(f"#key-{key_id}")).to_have_count(0)
    expect(page.get_by_role("status")).to_contain_text(f"Deleted API key {key_id}")


def test_reveal_and_hide_a_secret(signed_in: Page):
    page = signed_in
    page.get_by_role("link", name="Secrets").click()
    page.get_by_label("Name").fill("HF_TOKEN")
    page.get_by_label("Value", exact=True).fill("hf_browser_value")
    page.get_by_role("button", name="Create secret").click()
    value = page.locator("#secret-HF_TOKEN-value")
    expect(value).to_have_text("•••••")
    assert "hf_browser_value" not in page.content()
    page.get_by_role("button", name="Reveal the value of HF_TOKEN").click()
    expect(value).to_have_text("hf_browser_value")
    page.get_by_role("button", name="Hide the value of HF_TOKEN").click()
    expect(value).to_have_text("•••••")
