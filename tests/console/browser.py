"""Headless Chromium (Debian's package) driven by Playwright, for the console's end-to-end
tests: launched with no network beyond this machine, a fresh profile per test session, and
screenshots kept under the test's temporary folder (their paths printed)."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, sync_playwright

# The machine has no outside network: nothing of Chromium's may try to reach it.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Playwright's expectations wait up to this long for the page to reach a state.
EXPECT_MS = 30_000


def chromium_path() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        pytest.fail("Debian's chromium is not installed: `scripts/services start` installs it")
    return found


@dataclass
class Screens:
    """Where a test session's screenshots go."""

    folder: Path

    def shoot(self, page: Page, name: str) -> Path:
        path = self.folder / f"{re.sub(r'[^a-z0-9-]+', '-', name.lower())}.png"
        page.screenshot(path=str(path), full_page=True)
        print(f"screenshot: {path}")
        return path


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as running:
        yield running


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    # Playwright gives each launch a fresh temporary profile (user-data directory), and
    # each context its own cookies: one per person signed in.
    launched = playwright.chromium.launch(
        executable_path=chromium_path(),
        args=CHROMIUM_ARGS,
        headless=True,
        chromium_sandbox=False,
    )
    yield launched
    launched.close()


@pytest.fixture(scope="module")
def screens(tmp_path_factory: pytest.TempPathFactory) -> Screens:
    return Screens(tmp_path_factory.mktemp("console-screenshots"))


def new_context(browser: Browser, base_url: str) -> BrowserContext:
    context = browser.new_context(base_url=base_url, viewport={"width": 1400, "height": 900})
    context.set_default_timeout(EXPECT_MS)
    return context


def signed_in(browser: Browser, base_url: str, token: str) -> Page:
    """A page signed in with ``token`` through the sign-in form, as a person would."""
    page = new_context(browser, base_url).new_page()
    page.goto("/")
    page.wait_for_url(re.compile(r"/sign-in"))
    page.get_by_label("API token").fill(token)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r"/$"))
    return page
