"""Browser fixtures: headless Chromium driven by Playwright for Python.

The browser is the system's Chromium (Debian's ``chromium`` package), launched through its
executable path: Playwright's own browser downloads are never used. scripts/test exports
``GPUYARD_TEST_CHROMIUM``; without it ``chromium`` is looked up on PATH. The tests are skipped
when no Chromium is found or it does not start, and when ``GPUYARD_TEST_BROWSER=0``.

Screenshots (``shot``) are written as full-page PNGs to the folder named by
``GPUYARD_SCREENSHOTS`` (default: build/screenshots in the repository). A failing test leaves
one too, named ``failed-<test>.png``.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
HOW_TO_GET_CHROMIUM = (
    "browser tests need Chromium: apt-get install chromium, or set GPUYARD_TEST_CHROMIUM=/path"
)
CHROMIUM_ARGS = [
    "--no-sandbox",  # the tests run as root in CI, where Chromium's sandbox refuses to start
    "--disable-dev-shm-usage",  # containers often have a tiny /dev/shm
    "--disable-gpu",
    "--no-first-run",
    "--no-default-browser-check",
]
TIMEOUT_MS = 10_000  # for every locator action and expectation


def chromium_path() -> str | None:
    path = os.environ.get("GPUYARD_TEST_CHROMIUM") or shutil.which("chromium") or shutil.which(
        "chromium-browser"
    )
    return path if path and os.access(path, os.X_OK) else None


def screenshot_dir() -> Path:
    folder = Path(os.environ.get("GPUYARD_SCREENSHOTS") or REPO_ROOT / "build" / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="session")
def browser() -> Iterator:
    if os.environ.get("GPUYARD_TEST_BROWSER", "1").strip().lower() in ("0", "no", "false", "off"):
        pytest.skip("browser tests turned off (GPUYARD_TEST_BROWSER=0)")
    path = chromium_path()
    if not path:
        pytest.skip(HOW_TO_GET_CHROMIUM)
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("browser tests need Playwright for Python: pip install -e '.[test]'")
    playwright = sync_playwright().start()
    try:
        chromium = playwright.chromium.launch(executable_path=path, headless=True, args=CHROMIUM_ARGS)
    except Exception as exc:  # any launch failure means: no usable browser here
        playwright.stop()
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        pytest.skip(f"{HOW_TO_GET_CHROMIUM} ({path} did not start: {first_line})")
    yield chromium
    chromium.close()
    playwright.stop()


CALL_FAILED = pytest.StashKey[bool]()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = yield
    if report.when == "call":
        item.stash[CALL_FAILED] = report.failed
    return report


@pytest.fixture
def page(request: pytest.FixtureRequest, browser, live_server: str) -> Iterator:
    """A fresh browser context (no cookies) per test, with relative URLs on the live server."""
    from playwright.sync_api import expect

    expect.set_options(timeout=TIMEOUT_MS)
    context = browser.new_context(base_url=live_server, viewport={"width": 1280, "height": 800})
    context.set_default_timeout(TIMEOUT_MS)
    tab = context.new_page()
    yield tab
    failure_picture = screenshot_dir() / f"failed-{re.sub(r'[^A-Za-z0-9_.-]+', '_', request.node.name)}.png"
    if request.node.stash.get(CALL_FAILED, False):
        try:
            tab.screenshot(path=str(failure_picture), full_page=True)
        except Exception:  # a missing failure picture must not hide the failure
            pass
    else:  # the picture of an earlier failure is out of date
        failure_picture.unlink(missing_ok=True)
    context.close()


@pytest.fixture
def shot(page) -> Callable[[str], Path]:
    """``shot("templates")`` writes a full-page PNG of the current page; returns its path."""

    def take(name: str) -> Path:
        path = screenshot_dir() / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take


def sign_in(page, key: str) -> None:
    """Sign in through the form, keyboard only, and wait to land on the templates page."""
    page.goto("/login")
    page.get_by_label("API key").fill(key)
    page.get_by_label("API key").press("Enter")
    page.wait_for_url(re.compile(r"/templates$"))


@pytest.fixture
def signed_in(page, alice):
    """The page, signed in as alice, on the templates page."""
    sign_in(page, alice.key)
    return page
