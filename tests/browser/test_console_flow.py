"""The console end to end in a real browser: a template from creation to a running instance and
back, as a person would click through it. Screenshots of the main pages are written along the
way (see conftest.py: GPUYARD_SCREENSHOTS)."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

TEMPLATE_ENV = "-e MODEL_ID=deepseek-ai/DeepSeek-R1-Distill-Llama-8B -e MAX_TOKENS=4096 -p 8000:8000"
OVERRIDE_ENV = "-e MODEL_ID=mistralai/Mistral-7B-v0.1 -e HF_TOKEN=hf_xxx"
HASH = re.compile(r"^[0-9a-f]{32,64}$")


def row_with(table, *texts: str):
    """The rows of ``table`` that contain every one of ``texts``."""
    rows = table.get_by_role("row")
    for text in texts:
        rows = rows.filter(has_text=text)
    return rows


def create_template(page: Page, name: str, image: str, env: str, onstart: str) -> str:
    """Fill the new-template form (the env typed key by key) and save it; returns its hash."""
    page.goto("/templates")
    page.get_by_role("link", name="New template").click()
    expect(page).to_have_title("New template · gpuyard")
    page.get_by_label("Name", exact=True).fill(name)
    page.get_by_label("Image (required)").fill(image)
    page.get_by_label("Env (variables and ports)").press_sequentially(env)
    page.get_by_label("On-start script").fill(onstart)
    page.get_by_role("button", name="Create template").click()
    expect(page).to_have_url(re.compile(r"/templates/\d+$"))
    hash_id = page.locator("#hash-id").inner_text().strip()
    assert HASH.match(hash_id), hash_id
    return hash_id


@pytest.fixture
def booting(app, monkeypatch):
    """New instances of the simulated runtime stay "loading" for a moment before "running"."""
    monkeypatch.setattr(app.state.runtimes["simulated"], "boot_seconds", 4.0)


def test_from_a_template_to_a_running_instance_and_back(signed_in: Page, fleet, booting, shot):
    page = signed_in

    # --- Create a template; the env preview lists what the env sets while typing ----------------
    page.get_by_role("link", name="New template").click()
    expect(page).to_have_title("New template · gpuyard")
    page.get_by_label("Name", exact=True).fill("deepseek-8b")
    page.get_by_label("Image (required)").fill("vllm/vllm-openai")
    page.get_by_label("Tag").fill("v0.6.3")
    env_box = page.get_by_label("Env (variables and ports)")
    preview = page.get_by_role("table", name="What the env sets")
    model = "deepseek-ai/DeepSeek-R1-Distill-Llama-8B"
    env_box.press_sequentially(f"-e MODEL_ID={model} ")
    expect(row_with(preview, "variable", "MODEL_ID", model)).to_have_count(1)
    expect(preview.get_by_text("MAX_TOKENS")).to_have_count(0)
    env_box.press_sequentially("-e MAX_TOKENS=4096 -p 8000:8000")
    expect(row_with(preview, "variable", "MAX_TOKENS", "4096")).to_have_count(1)
    expect(row_with(preview, "port", "8000:8000")).to_have_count(1)
    expect(env_box).to_have_value(TEMPLATE_ENV)
    page.get_by_label("On-start script").fill("echo serving $MODEL_ID")
    shot("template-new")
    page.get_by_role("button", name="Create template").click()

    expect(page).to_have_url(re.compile(r"/templates/\d+$"))
    expect(page.get_by_role("status")).to_contain_text("created")
    first_hash = page.locator("#hash-id").inner_text().strip()
    assert HASH.match(first_hash), first_hash
    template_url = page.url

    # --- Search: a query that does not parse shows the parser's error next to the box ----------
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Templates").click()
    search = page.get_by_label("Search (query language)")
    search.fill("nonsense_field > 1")
    search.press("Enter")
    q_error = page.locator("#q-error")
    expect(q_error).to_be_visible()
    expect(q_error).to_contain_text("unknown field 'nonsense_field'")
    expect(search).to_have_attribute("aria-invalid", "true")
    expect(search).to_have_attribute("aria-describedby", re.compile(r"\bq-error\b"))
    expect(search).to_have_value("nonsense_field > 1")
    shot("templates-search-error")
    # ... and a good one finds the template.
    search.fill("name=deepseek-8b")
    search.press("Enter")
    expect(page.locator("#q-error")).to_have_count(0)
    table = page.locator("#templates-table")
    expect(row_with(table, "deepseek-8b", "vllm/vllm-openai:v0.6.3", first_hash)).to_have_count(1)
    shot("templates")

    # --- Edit: a new hash, and both hashes in the history ------------------------------------
    table.get_by_role("link", name="deepseek-8b", exact=True).click()
    expect(page).to_have_url(template_url)
    page.get_by_role("link", name="Edit").click()
    expect(page.locator("#editing-hash")).to_have_text(first_hash)
    onstart = page.get_by_label("On-start script")
    expect(onstart).to_have_value("echo serving $MODEL_ID")
    onstart.fill("echo serving $MODEL_ID\necho max tokens $MAX_TOKENS")
    page.get_by_role("button", name="Save changes").click()

    expect(page).to_have_url(template_url)
    expect(page.get_by_role("status")).to_contain_text("new hash_id")
    second_hash = page.locator("#hash-id").inner_text().strip()
    assert HASH.match(second_hash) and second_hash != first_hash
    history = page.locator("#versions")
    expect(row_with(history, second_hash, "(current)")).to_have_count(1)
    expect(row_with(history, first_hash)).to_have_count(1)
    shot("template")

    # The diff of the two versions: only the on-start script changed.
    page.get_by_role("button", name="Compare").click()
    expect(page).to_have_url(re.compile(r"/diff\?"))
    expect(page.locator("#diff-summary")).to_contain_text("1 field changed")
    changed = page.locator("#diff tbody tr.changed")
    expect(changed).to_have_count(1)
    expect(changed).to_have_attribute("data-field", "onstart")
    expect(changed).to_contain_text("echo max tokens $MAX_TOKENS")
    shot("template-diff")

    # --- Launch on an offer with an env override: the preview shows the merged env ----------
    page.goto(template_url)
    page.locator("#launch-link").click()
    expect(page).to_have_url(re.compile(r"/launch\?"))
    expect(page.locator("#template-hash")).to_have_text(second_hash)
    page.get_by_role("radio", name=re.compile(r": 1× RTX 4090$")).check()
    page.get_by_label("Environment (Docker flags)").fill(OVERRIDE_ENV)
    page.get_by_label("Label").fill("mistral-demo")
    page.get_by_role("button", name="Preview").click()

    merged = page.locator("#preview-env")
    expect(merged).to_be_visible()
    expect(row_with(merged, "MODEL_ID", "mistralai/Mistral-7B-v0.1")).to_have_count(1)  # the request's
    expect(merged).not_to_contain_text("DeepSeek")
    expect(row_with(merged, "MAX_TOKENS", "4096")).to_have_count(1)  # the template's
    expect(row_with(merged, "HF_TOKEN", "hf_xxx")).to_have_count(1)
    expect(page.locator("#preview-ports")).to_contain_text("8000")
    expect(page.locator("#preview-image")).to_contain_text("vllm/vllm-openai:v0.6.3")
    expect(page.get_by_role("radio", name=re.compile(r": 1× RTX 4090$"))).to_be_checked()
    shot("launch-preview")
    page.get_by_role("button", name="Launch", exact=True).click()

    # --- The instance reaches running on the list, without reloading the page ----------------
    expect(page).to_have_url(re.compile(r"/instances/\d+$"))
    instance_id = page.url.rstrip("/").rsplit("/", 1)[1]
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Instances").click()
    expect(page).to_have_url(re.compile(r"/instances$"))
    page.evaluate("window.stillTheSamePage = true")
    status = page.locator(f"#status-{instance_id}")
    expect(status).to_contain_text("loading")
    expect(status).to_have_text("running", timeout=15_000)
    assert page.evaluate("window.stillTheSamePage === true"), "the list was reloaded"
    row = page.locator(f"#instance-{instance_id}")
    expect(row).to_contain_text("mistral-demo")
    expect(page.locator(f"#ports-{instance_id}")).to_contain_text("8000/tcp")
    shot("instances")

    # --- Its logs ----------------------------------------------------------------------------
    row.get_by_role("link", name=instance_id).click()
    expect(page.locator("#instance-status")).to_have_text("running")
    logs = page.get_by_label(f"Logs of instance {instance_id}")
    expect(logs).to_contain_text("serving mistralai/Mistral-7B-v0.1")
    expect(logs).to_contain_text("max tokens 4096")
    env_table = page.locator("#instance-env")
    expect(row_with(env_table, "HF_TOKEN", "hf_xxx")).to_have_count(1)
    shot("instance")

    # --- Destroy it (after the confirmation dialog) and see it gone --------------------------
    dialogs: list[str] = []

    def accept(dialog) -> None:
        dialogs.append(dialog.message)
        dialog.accept()

    page.on("dialog", accept)
    page.get_by_role("button", name="Destroy").click()
    expect(page).to_have_url(re.compile(r"/instances$"))
    assert dialogs and f"Destroy instance {instance_id}" in dialogs[0], dialogs
    expect(page.locator(f"#instance-{instance_id}")).to_have_count(0)
    expect(page.get_by_text("You have no instances.")).to_be_visible()


def test_a_volume_is_created_and_deleted(signed_in: Page, fleet, shot):
    page = signed_in
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Volumes").click()
    expect(page).to_have_title("Volumes · gpuyard")
    expect(page.get_by_text("You have no volumes.")).to_be_visible()
    page.get_by_role("radio", name=re.compile(r"Volume offer")).first.check()
    page.get_by_label("Size (GB)").fill("50")
    page.get_by_label("Name", exact=True).fill("models")
    page.get_by_role("button", name="Create volume").click()

    expect(page.get_by_role("status")).to_contain_text("created")
    volumes = page.locator("#volumes-table")
    expect(row_with(volumes, "models", "50 GB", "available")).to_have_count(1)
    shot("volumes")

    page.on("dialog", lambda dialog: dialog.accept())
    volumes.get_by_role("button", name=re.compile(r"Delete volume .* models")).click()
    expect(page.get_by_role("status")).to_contain_text("deleted")
    expect(page.get_by_text("You have no volumes.")).to_be_visible()


def test_a_template_name_is_shown_as_text_never_run(signed_in: Page, fleet):
    page = signed_in
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    name = "<script>alert(1)</script>"
    create_template(page, name, "busybox", "-e GREETING=<b>hi</b>", "echo $GREETING")

    # The template's page, the list and the launch page show the name as typed.
    expect(page.get_by_role("heading", level=1)).to_have_text(name)
    expect(page.locator('#template-fields tr[data-field="env"]')).to_contain_text("<b>hi</b>")
    page.goto("/templates")
    expect(page.locator("#templates-table").get_by_text(name, exact=True)).to_be_visible()
    page.get_by_role("link", name=f"Launch {name}").click()
    expect(page.locator("#template-name")).to_have_text(name)
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Launch {name}")
    assert page.locator("script", has_text="alert(1)").count() == 0
    assert page.locator("b", has_text="hi").count() == 0
    assert dialogs == [], dialogs
