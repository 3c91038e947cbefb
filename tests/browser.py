"""A real browser for the tests: Debian's chromium through Playwright (which cannot download one here)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass, field

from playwright.sync_api import ConsoleMessage, Error, Page, sync_playwright

CHROMIUM = os.environ.get("CRISISMON_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@dataclass
class Browser:
    """A page, and what went wrong in it: uncaught errors and console errors (CSP refusals too)."""

    page: Page
    errors: list[str] = field(default_factory=list)

    def problems(self, *expected: str) -> list[str]:
        """The errors, but those that contain one of `expected`."""
        return [error for error in self.errors if not any(part in error for part in expected)]


@contextlib.contextmanager
def opened_browser() -> Iterator[Browser]:
    """A page in a fresh chromium, its errors collected; chromium is closed whatever happens.

    Playwright's sync API runs an asyncio loop of its own, inside which asyncio.run refuses to
    run: close it before anything that needs asyncio.run (the Kafka fixtures' teardown)."""
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = chromium.new_context(viewport={"width": 1400, "height": 900}).new_page()
            page.set_default_timeout(15_000)
            opened = Browser(page)

            def console(message: ConsoleMessage) -> None:
                if message.type == "error":
                    opened.errors.append(message.text)

            def uncaught(error: Error) -> None:
                opened.errors.append(f"uncaught: {error}")

            page.on("console", console)
            page.on("pageerror", uncaught)
            yield opened
        finally:
            chromium.close()
