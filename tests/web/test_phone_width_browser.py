"""The ticket page at a phone's width (390 px) in headless Chromium: nothing sticks out at
the right edge — the change log wraps or scrolls inside its own box, and the action's
fieldsets (refund type, reason, reply template) stay inside the form. German and
Portuguese, whose words are long. Screenshots go to `ARTIFACTS`."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page

from gateway.domain.facts import Action, Role, TicketType
from gateway.services import orders, tickets, vendors
from gateway.services.context import Actor
from gateway.services.runtime import Runtime
from tests.support import free_port
from tests.support.browser import PHONE, Server, kept_on_failure, launch, shoot
from ticketgw.testing.runtime import make_runtime

STAFF = Actor(Role.STAFF, source="cli")
CUSTOMER = Actor(Role.CUSTOMER, "ana.exemplo.com.um.nome.comprido@example.org", source="email")
VENDOR = Actor(Role.VENDOR, "verkauf@acme.example", source="web")
# Elements whose right edge passes the viewport's, outside a box that scrolls them.
STICKING_OUT = """() => {
  const width = document.documentElement.clientWidth;
  const scrolls = el => { for (let p = el.parentElement; p; p = p.parentElement) {
      const o = getComputedStyle(p).overflowX; if (o === 'auto' || o === 'scroll') return true; }
    return false; };
  return [...document.body.querySelectorAll('*')]
    .filter(el => el.getBoundingClientRect().right > width + 0.5 && !scrolls(el))
    .map(el => el.tagName + (el.className ? '.' + el.className : ''));
}"""
FIELDSETS_OUT = """() => [...document.querySelectorAll('form.act fieldset')].filter(f =>
  f.getBoundingClientRect().right > f.closest('form').getBoundingClientRect().right + 0.5)
  .map(f => f.querySelector('legend').textContent)"""


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    yield from launch()


@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[Runtime, str]]:
    port = free_port()
    rt = make_runtime(f"sqlite:///{tmp_path / 'ticketgw.db'}", tmp_path,
                      base_url=f"http://127.0.0.1:{port}")
    server = Server(rt, port)
    try:
        yield rt, f"http://127.0.0.1:{port}"
    finally:
        server.stop()
        rt.close()


def seed(rt: Runtime) -> int:
    """A refund request the German vendor made partial: a change log with long sentences."""
    with rt.sessions.begin() as session:
        vendors.add_vendor(session, rt.context(), STAFF, "acme", "verkauf@acme.example",
                           timezone="Europe/Berlin", locale="de", partial_refunds=True)
        orders.upsert_order(session, rt.context(), orders.parse_line({
            "receipt": "PTDE0004", "vendor": "acme", "sku": "guide",
            "title": "O Guia Completo de Exemplo", "kind": "digital", "recurring": False,
            "customer_email": CUSTOMER.email, "customer_name": "Ana Exemplo", "quantity": 1,
            "amount": "39.16", "currency": "USD", "purchased_at": "2026-11-10T10:00:00Z",
            "locale": "pt"}))
        ticket = tickets.open_ticket(session, rt.context(), "PTDE0004", TicketType.REFUND,
                                     CUSTOMER, reason="not_as_described",
                                     comment="O produto não corresponde à descrição.")
        tickets.act(session, rt.context(), ticket.number, Action.PERCENT, VENDOR, value="30")
        return ticket.number


def check(page: Page, name: str) -> None:
    with kept_on_failure(page, name):
        shoot(page, name)
        page.set_viewport_size(PHONE)
        assert page.evaluate(STICKING_OUT) == []
        assert page.evaluate(FIELDSETS_OUT) == []


@pytest.mark.parametrize(("party", "name"), [(Role.VENDOR, "phone-vendor-de"),
                                             (Role.CUSTOMER, "phone-customer-pt")])
def test_nothing_sticks_out_at_a_phones_width(browser: Browser, site: tuple[Runtime, str],
                                              party: Role, name: str) -> None:
    rt, base = site
    number = seed(rt)
    token = rt.tokens.sign("ticket", number, party, rt.clock.now() + timedelta(days=90))
    page = browser.new_page(viewport=PHONE)
    page.goto(f"{base}/t/{token}")
    check(page, name)
    page.close()
