"""The workplace in headless Chromium against a real server (`start_web` on a free port), the
sign-in link taken from mail delivered to a real SMTP sink: a vendor signs in, finds a ticket
by receipt, answers it and opens a ticket from an order; staff review a dispute and restore
the vendor's right to answer. Screenshots at phone and desktop width go to /tmp.

Chromium is Debian's (`/usr/bin/chromium`, installed by `.ci/run`); no browser is downloaded.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright
from sqlalchemy import select

from gateway.domain.facts import Action, Role, TicketType
from gateway.services import orders, tickets, vendors
from gateway.services.context import Actor
from gateway.services.runtime import Runtime
from outbound.deliver import Deliverer
from outbound.sweeps import sweep_outbox
from store.models import Message
from tests.support import free_port
from tests.support.services import services_required
from ticketgw.testing.runtime import make_runtime
from ticketgw.testing.smtp_sink import SmtpSink
from web.server import WebHandle, start_web

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SHOTS = Path("/tmp/ticketgw-workplace-shots")
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}
STAFF = Actor(Role.STAFF, source="cli")
CUSTOMER = Actor(Role.CUSTOMER, "ann@example.org", source="email")
VENDOR = Actor(Role.VENDOR, "help@acme.example", source="email")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
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


class Shop:
    """A running gateway: its runtime, web server, and the SMTP sink its mail goes to."""

    def __init__(self, runtime: Runtime, sink: SmtpSink, base: str) -> None:
        self.runtime, self.sink, self.base = runtime, sink, base
        self.deliverer = Deliverer(runtime)

    def deliver(self) -> None:
        sweep_outbox(self.runtime.sessions, self.runtime.clock, self.deliverer.deliver)

    def signin_mail(self, to: str) -> EmailMessage:
        self.deliver()
        for mail in reversed(self.sink.messages):
            if mail.rcpt_tos == (to,) and mail.subject == "Your Sign-in Link":
                return mail.message
        raise AssertionError(f"no sign-in mail to {to}")


def seed(rt: Runtime) -> None:
    ctx = rt.context()
    with rt.sessions.begin() as session:
        vendors.add_vendor(session, ctx, STAFF, "acme", "sales@acme.example",
                           cs_email="help@acme.example", timezone="Europe/Berlin")
        vendors.add_vendor(session, ctx, STAFF, "globex", "sales@globex.example")
        for receipt, vendor in (("ABCD1234", "acme"), ("EFGH5678", "acme"),
                                ("WXYZ0001", "globex")):
            orders.upsert_order(session, ctx, orders.parse_line({
                "receipt": receipt, "vendor": vendor, "sku": "guide", "title": "The Guide",
                "kind": "digital", "recurring": False, "customer_email": "ann@example.org",
                "customer_name": "Ann Example", "quantity": 1, "amount": "47.00",
                "currency": "USD", "purchased_at": "2026-11-10T10:00:00Z", "locale": "en"}))
    for receipt in ("EFGH5678", "WXYZ0001"):
        with rt.sessions.begin() as session:
            tickets.open_ticket(session, rt.context(), receipt, TicketType.REFUND, CUSTOMER,
                                reason="not_satisfied", comment="It is not what I expected.")


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shop]:
    tmp = tmp_path_factory.mktemp("workplace")
    port = free_port()
    with SmtpSink() as sink:
        rt = make_runtime(f"sqlite:///{tmp / 'ticketgw.db'}", tmp, smtp_relay=sink.address,
                          base_url=f"http://127.0.0.1:{port}")
        seed(rt)
        server = Server(rt, port)
        try:
            yield Shop(rt, sink, f"http://127.0.0.1:{port}")
        finally:
            server.stop()
            rt.close()


def link_in(message: EmailMessage, base: str) -> str:
    body = message.get_body(("plain",))
    assert body is not None
    for word in str(body.get_content()).split():
        if word.startswith(base + "/signin/"):
            return word
    raise AssertionError("no sign-in link in the mail")


def shoot(page: Page, name: str) -> None:
    """The page at phone and desktop width, whole (the viewport is restored after)."""
    SHOTS.mkdir(exist_ok=True)
    for label, size in (("phone", PHONE), ("desktop", DESKTOP)):
        page.set_viewport_size(size)
        page.screenshot(path=str(SHOTS / f"{name}-{label}.png"), full_page=True)
    page.set_viewport_size(DESKTOP)


def sign_in(page: Page, shop: Shop, address: str, start: str) -> None:
    page.goto(shop.base + start)
    expect(page).to_have_url(shop.base + "/signin")
    page.get_by_label("Email address").fill(address)
    page.get_by_role("button", name="Mail Me a Sign-in Link").click()
    expect(page.get_by_role("heading", name="Check your mail")).to_be_visible()
    page.goto(link_in(shop.signin_mail(address), shop.base))
    page.get_by_role("button", name="Sign In").click()


def test_vendor_signs_in_finds_answers_and_opens_a_ticket(browser: Browser, shop: Shop) -> None:
    page = browser.new_page(viewport=DESKTOP)
    page.goto(shop.base + "/signin")
    shoot(page, "signin")
    # the sale mail's link: after signing in, the vendor lands on that order
    sign_in(page, shop, "help@acme.example", "/w/orders/ABCD1234")
    expect(page).to_have_url(shop.base + "/w/orders/ABCD1234")
    expect(page.get_by_role("heading", name="Order ABCD1234")).to_be_visible()

    page.get_by_role("navigation").get_by_role("link", name="Tickets").click()
    expect(page.locator("table.list tbody tr")).to_have_count(1)  # not globex's ticket
    page.get_by_label("Find").fill("EFGH5678")
    page.get_by_role("button", name="Search").click()
    shoot(page, "tickets")
    page.get_by_role("link", name="#1001").click()
    expect(page.get_by_role("heading", name="Ticket #1001 — Refund Request")).to_be_visible()
    shoot(page, "ticket")
    reply = page.locator("form", has=page.get_by_role("button", name="Reply", exact=True))
    reply.locator("textarea").fill("Did the download work for you?")
    reply.get_by_role("button", name="Reply").click()
    expect(page.get_by_text("Your reply was added")).to_be_visible()
    with shop.runtime.sessions() as session:
        text, source = session.execute(select(Message.text, Message.source)
                                       .order_by(Message.id.desc()).limit(1)).one()
    assert (text, source) == ("Did the download work for you?", "web")

    page.get_by_role("navigation").get_by_role("link", name="Orders").click()
    shoot(page, "orders")
    page.locator("tr", has_text="ABCD1234").get_by_role("link", name="Open a ticket").click()
    shoot(page, "order")
    form = page.locator("form", has=page.get_by_role("button", name="Open a Tech Support Ticket"))
    form.get_by_label("Problem").select_option("cannot_download")
    form.locator("textarea").fill("The customer wrote to us by phone.")
    form.get_by_role("button", name="Open a Tech Support Ticket").click()
    expect(page.get_by_text("The ticket is open and both parties were mailed.")).to_be_visible()
    expect(page.get_by_role("heading", name="Ticket #1003 — Tech Support Request")).to_be_visible()

    for name in ("Standing", "Settings"):
        page.get_by_role("navigation").get_by_role("link", name=name).click()
        shoot(page, name.lower())
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(shop.base + "/signin?done=out")
    page.goto(shop.base + "/w/tickets")
    expect(page).to_have_url(shop.base + "/signin")
    page.close()


def test_staff_review_a_dispute_and_restore_the_right(browser: Browser, shop: Shop) -> None:
    rt = shop.runtime
    globex = Actor(Role.VENDOR, "sales@globex.example", source="email")
    for number, vendor in ((1001, VENDOR), (1002, globex)):  # closed, then disputed
        for actor, action in ((vendor, Action.CLOSE), (CUSTOMER, Action.DISPUTE)):
            with rt.sessions.begin() as session:
                tickets.act(session, rt.context(), number, action, actor)
    with rt.sessions.begin() as session:
        vendors.set_privilege(session, rt.context(), STAFF, "acme", False)
    page = browser.new_page(viewport=DESKTOP)
    sign_in(page, shop, "staff@tickets.localhost", "/w/review")
    expect(page).to_have_url(shop.base + "/w/review")
    expect(page.get_by_text("Disputed by the customer").first).to_be_visible()
    expect(page.get_by_text("Right to answer revoked")).to_be_visible()
    shoot(page, "review")
    page.locator("tr", has_text="Right to answer revoked").get_by_role(
        "link", name="acme").click()
    page.get_by_role("button", name="Restore the Right to Answer").click()
    expect(page.get_by_text("The right to answer is restored.")).to_be_visible()
    shoot(page, "vendor")
    page.get_by_role("navigation").get_by_role("link", name="Tickets").click()
    expect(page.locator("table.list tbody tr", has_text="globex").first).to_be_visible()
    page.close()
