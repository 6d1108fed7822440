"""An Apple Mail picture renders in place in headless Chromium under the ticket page's own CSP:
the mail comes in through the real SMTP listener, the page is served by the real web server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser
from sqlalchemy import select

from gateway.domain.facts import Role
from store.models import Ticket
from tests.inbound.conftest import DOMAIN, SmtpServer, seed, send
from tests.support import free_port
from tests.support.browser import Server, kept_on_failure, launch
from ticketgw.testing.runtime import make_runtime

DATA = Path(__file__).resolve().parents[1] / "data"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    yield from launch()


def test_the_mails_own_picture_renders_on_the_page(browser: Browser, tmp_path: Path) -> None:
    port = free_port()
    runtime = make_runtime(f"sqlite:///{tmp_path / 'ticketgw.db'}", tmp_path,
                           base_url=f"http://127.0.0.1:{port}")
    seed(runtime)
    smtp, web = SmtpServer(runtime), Server(runtime, port)
    try:
        code, answer = send(smtp, (DATA / "apple_inline_image_en.eml").read_bytes(),
                            rcpt=f"support@{DOMAIN}")
        assert code == 250, answer
        with runtime.sessions() as session:
            number = session.scalars(select(Ticket.number)).one()
        link = runtime.tokens.sign("ticket", number, Role.VENDOR,
                                   runtime.clock.now().replace(year=2099))
        page = browser.new_page()
        refused: list[str] = []
        page.on("console", lambda m: refused.append(m.text) if "Content Security" in m.text
                else None)
        with kept_on_failure(page, "inline-image"):
            page.goto(f"http://127.0.0.1:{port}/t/{link}")
            page.get_by_text("As formatted by the sender").click()
            picture = page.locator('details img[alt="error screenshot"]')
            picture.wait_for(state="visible")
            page.wait_for_function(  # loaded and decoded, or the deadline
                "img => img.complete && img.naturalWidth > 0", arg=picture.element_handle(),
                timeout=10_000)
            size = picture.evaluate("img => [img.naturalWidth, img.naturalHeight]")
            assert size == [4, 3], size  # the PNG's own size
            assert str(picture.get_attribute("src")).startswith("/f/")
            assert refused == []
        page.close()
    finally:
        web.stop()
        smtp.stop()
        runtime.close()
