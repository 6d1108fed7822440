"""The party pages in headless Chromium against a real server, each link taken from a mail the
gateway delivered to a real SMTP sink: a Portuguese customer replies and turns a tech-support
ticket into a refund; a German vendor saves a refund request as a sale and closes. Each test
seeds a gateway of its own. Every page is read in the party's language. Screenshots at phone
and desktop width go to `ARTIFACTS` (a failing step leaves `FAILED-*.png` there, its path
printed).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import select

from gateway.domain.facts import Role, TicketType
from gateway.domain.texts import _
from gateway.services import i18n, orders, tickets, vendors
from gateway.services.context import Actor
from gateway.services.runtime import Runtime
from outbound.deliver import Deliverer
from outbound.sweeps import sweep_outbox
from store.models import Message, Ticket
from tests.support import free_port
from tests.support.browser import DESKTOP, Server, kept_on_failure, launch, shoot
from ticketgw.testing.runtime import make_runtime
from ticketgw.testing.smtp_sink import SmtpSink

STAFF = Actor(Role.STAFF, source="cli")
CUSTOMER = Actor(Role.CUSTOMER, "ana@example.org", source="email")
VENDOR_MAIL = "hilfe@acme.example"


class Shop:
    """A running gateway: its runtime, its web server's address, the sink its mail goes to."""

    def __init__(self, runtime: Runtime, sink: SmtpSink, base: str) -> None:
        self.runtime, self.sink, self.base = runtime, sink, base
        self.deliverer = Deliverer(runtime)

    def link_for(self, to: str) -> str:
        """The ticket link in the newest mail delivered to `to`."""
        sweep_outbox(self.runtime.sessions, self.runtime.clock, self.deliverer.deliver)
        for mail in reversed(self.sink.messages):
            if mail.rcpt_tos == (to,):
                body = mail.message.get_body(("plain",))
                assert body is not None
                for word in str(body.get_content()).split():
                    if word.startswith(self.base + "/t/"):
                        return word
        raise AssertionError(f"no mail to {to} with a ticket link")


def seed(rt: Runtime, ticket_type: TicketType, reason: str, comment: str) -> None:
    """One vendor, one order, and the customer's ticket on it."""
    with rt.sessions.begin() as session:
        vendors.add_vendor(session, rt.context(), STAFF, "acme", "verkauf@acme.example",
                           cs_email=VENDOR_MAIL, timezone="Europe/Berlin", locale="de")
        orders.upsert_order(session, rt.context(), orders.parse_line({
            "receipt": "PTDE0001", "vendor": "acme", "sku": "guide", "title": "O Guia",
            "kind": "digital", "recurring": False, "customer_email": "ana@example.org",
            "customer_name": "Ana Exemplo", "quantity": 1, "amount": "39.16",
            "currency": "USD", "purchased_at": "2026-11-10T10:00:00Z", "locale": "pt"}))
    with rt.sessions.begin() as session:
        tickets.open_ticket(session, rt.context(), "PTDE0001", ticket_type, CUSTOMER,
                            reason=reason, comment=comment)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    yield from launch()


@pytest.fixture
def shop(tmp_path: Path) -> Iterator[Shop]:
    """A gateway of the test's own (database, sink, server): no test leans on another's
    state, so each one runs alone or in any order."""
    port = free_port()
    with SmtpSink() as sink:
        rt = make_runtime(f"sqlite:///{tmp_path / 'ticketgw.db'}", tmp_path,
                          smtp_relay=sink.address, base_url=f"http://127.0.0.1:{port}")
        server = Server(rt, port)
        try:
            yield Shop(rt, sink, f"http://127.0.0.1:{port}")
        finally:
            server.stop()
            rt.close()


def act(page: Page, button: str, comment: str | None = None) -> None:
    """Write `comment` in the form that has `button`, and press it."""
    form = page.locator("form", has=page.get_by_role("button", name=button, exact=True))
    if comment is not None:
        form.get_by_role("textbox").first.fill(comment)
    form.get_by_role("button", name=button, exact=True).click()


def ticket(shop: Shop) -> tuple[str, str]:
    with shop.runtime.sessions() as session:
        row = session.execute(select(Ticket.type, Ticket.status)).one()
    return row[0], row[1]


def test_portuguese_customer_replies_and_asks_for_a_refund(browser: Browser,
                                                           shop: Shop) -> None:
    pt = lambda text: i18n.say(text, "pt")  # noqa: E731 - the page's words, from the catalogue
    seed(shop.runtime, TicketType.TECH_SUPPORT, "cannot_download",
         "O link de download não funciona.")
    page = browser.new_page(viewport=DESKTOP)
    with kept_on_failure(page, "customer"):
        page.goto(shop.link_for("ana@example.org"))
        expect(page.locator("html")).to_have_attribute("lang", "pt")
        expect(page.get_by_role("heading", level=1)).to_contain_text(pt(_("Ticket #%(n)s", n=1001)))
        shoot(page, "customer-pt")
        act(page, pt(_("Reply")), "Já tentei em dois navegadores.")
        expect(page.get_by_text(pt(_("Your reply was added and mailed to the other party."))))\
            .to_be_visible()
        with shop.runtime.sessions() as session:
            text, source = session.execute(select(Message.text, Message.source)
                                           .order_by(Message.id.desc()).limit(1)).one()
        assert (text, source) == ("Já tentei em dois navegadores.", "web")
        act(page, pt(_("Change to Refund")), "Prefiro o reembolso.")
        expect(page.locator("p.note")).to_be_visible()
        assert ticket(shop) == ("refund", "open")
        shoot(page, "customer-pt-refund")
    page.close()


def test_german_vendor_saves_the_sale_and_closes(browser: Browser, shop: Shop) -> None:
    de = lambda text: i18n.say(text, "de")  # noqa: E731 - the page's words, from the catalogue
    seed(shop.runtime, TicketType.REFUND, "not_received", "O download nunca chegou.")
    page = browser.new_page(viewport=DESKTOP)
    with kept_on_failure(page, "vendor"):
        page.goto(shop.link_for(VENDOR_MAIL))
        expect(page.locator("html")).to_have_attribute("lang", "de")
        expect(page.get_by_text("Vendor", exact=True)).to_have_count(0)
        shoot(page, "vendor-de")
        act(page, de(_("Change to Tech Support")), "Hier ist ein neuer Download-Link.")
        expect(page.get_by_text(de(_("The ticket is now a tech-support ticket."))))\
            .to_be_visible()
        assert ticket(shop) == ("tech_support", "open")
        act(page, de(_("Close Ticket")))
        expect(page.get_by_text(de(_("The ticket is closed.")))).to_be_visible()
        assert ticket(shop)[1] == "closed"
        shoot(page, "vendor-de-closed")
    page.close()
