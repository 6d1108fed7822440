"""Headless Chromium for page tests: Debian's browser driven by Playwright, a real web server
on a free port, and screenshots kept when a test fails.

Chromium is `/usr/bin/chromium` (installed by `.ci/run`); no browser is ever downloaded.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from gateway.services.runtime import Runtime
from tests.support.services import services_required
from web.server import WebHandle, start_web

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = Path("/tmp/ticketgw-browser-artifacts")
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}


def launch() -> Iterator[Browser]:
    """The browser for a module's tests (use as the body of a module-scoped fixture)."""
    if not Path(CHROMIUM).exists():
        if services_required():
            pytest.fail(f"{CHROMIUM} is missing: install the Debian package chromium")
        pytest.skip(f"{CHROMIUM} is missing (Debian package chromium)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield launched
        launched.close()


class Server:
    """`start_web` in an event loop of its own thread, as `ticketgw web` runs it."""

    def __init__(self, runtime: Runtime, port: int) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.handle: WebHandle = asyncio.run_coroutine_threadsafe(
            start_web(runtime, "127.0.0.1", port), self.loop).result(15)

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.handle.stop(), self.loop).result(15)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(15)
        self.loop.close()


def shoot(page: Page, name: str, folder: Path = ARTIFACTS) -> list[Path]:
    """The whole page at phone and desktop width (the viewport is restored after)."""
    folder.mkdir(parents=True, exist_ok=True)
    before = page.viewport_size or DESKTOP
    written = []
    for label, size in (("phone", PHONE), ("desktop", DESKTOP)):
        page.set_viewport_size(size)
        written.append(folder / f"{name}-{label}.png")
        page.screenshot(path=str(written[-1]), full_page=True)
    page.set_viewport_size(before)
    return written


@contextlib.contextmanager
def kept_on_failure(page: Page, name: str) -> Iterator[None]:
    """On a failure inside, the page as it stood is written to ARTIFACTS (path printed), so
    CI keeps what the browser saw."""
    try:
        yield
    except BaseException:
        with contextlib.suppress(Exception):
            path = ARTIFACTS / f"FAILED-{name}.png"
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(path), full_page=True)
            (ARTIFACTS / f"FAILED-{name}.html").write_text(page.content())
            print(f"\nbrowser artifacts: {path} (and .html) for {page.url}")
        raise
