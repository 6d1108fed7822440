"""One language per person on the web: every page in its viewer's language, with no English.

A page's viewer is its party: the customer reads in the order's locale, the vendor in the
vendor's. Staff, and pages that know no party (a bad link, a missing page), follow the
browser's Accept-Language, then English. Each page is rendered in fr, de and pt with our own
words only (a product title and comments of no language), and any English word left in what
a reader sees fails the test.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from email import message_from_bytes, policy

import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from gateway.domain.facts import Action, Role, TicketType
from gateway.services import orders, tickets, vendors
from gateway.services.context import Actor
from gateway.services.runtime import Runtime
from outbound.compose import Composer
from store.models import OutboxMail
from tests.support.english import english_words, visible_text
from web.app import create_app

STAFF = Actor(Role.STAFF, source="cli")
OTHER_LOCALES = ("fr", "de", "pt")
NAMES = frozenset({"Zorblax", "Ann", "Vendorx"})  # the shop's own names, in any language


def seed(rt: Runtime, locale: str) -> tuple[int, int, int]:
    """A vendor and a customer who both read `locale`; an order each for a refund ticket,
    a tech-support ticket and a subscription. Returns (refund ticket, tech ticket, order id)."""
    ctx = rt.context()
    nick = f"shop-{locale}"
    with rt.sessions.begin() as session:
        vendors.add_vendor(session, ctx, STAFF, nick, f"sales@{nick}.example",
                           timezone="Europe/Berlin", locale=locale)
        line = {"vendor": nick, "sku": "zb-1", "title": "Zorblax", "kind": "digital",
                "recurring": True, "customer_email": f"ann-{locale}@example.org",
                "customer_name": "Ann", "quantity": 2, "amount": "47.00", "currency": "EUR",
                "purchased_at": "2026-11-10T10:00:00Z", "locale": locale,
                "payments": [{"at": "2026-11-10T10:00:00Z", "amount": "47.00"}]}
        refund_order, _ = orders.upsert_order(session, ctx, orders.parse_line(
            {**line, "receipt": f"RF{locale.upper()}0001"}))
        orders.upsert_order(session, ctx, orders.parse_line(
            {**line, "receipt": f"TS{locale.upper()}0001"}))
    customer = Actor(Role.CUSTOMER, f"ann-{locale}@example.org", source="email")
    vendor = Actor(Role.VENDOR, f"sales@{nick}.example", source="email")
    with rt.sessions.begin() as session:
        refund = tickets.open_ticket(session, rt.context(), f"RF{locale.upper()}0001",
                                     TicketType.REFUND, customer, comment="Zorblax zorblax.")
        tickets.act(session, rt.context(), refund.number, Action.REPLY, vendor,
                    comment="Zorblax?")
        tech = tickets.open_ticket(session, rt.context(), f"TS{locale.upper()}0001",
                                   TicketType.TECH_SUPPORT, customer, comment="Zorblax.")
        return refund.number, tech.number, refund_order.id


@pytest.fixture
def client(runtime: Runtime) -> Iterator[TestClient]:
    with TestClient(create_app(runtime), follow_redirects=False) as test_client:
        yield test_client


def sign(rt: Runtime, purpose: str, subject: int, party: Role) -> str:
    return rt.tokens.sign(purpose, subject, party, rt.clock.now() + timedelta(days=90))


def lang_of(html: str) -> str:
    found = re.search(r'<html lang="([a-z]+)">', html)
    assert found, html[:200]
    return found.group(1)


def english_on(html: str, locale: str) -> list[str]:
    return english_words(visible_text(html), locale, allowed=NAMES)


def test_every_page_of_a_party_is_in_its_language_with_no_english(
        runtime: Runtime, client: TestClient) -> None:
    found: dict[str, list[str]] = {}
    for locale in OTHER_LOCALES:
        refund, tech, order_id = seed(runtime, locale)
        pages = {
            "customer ticket": f"/t/{sign(runtime, 'ticket', refund, Role.CUSTOMER)}",
            "vendor ticket": f"/t/{sign(runtime, 'ticket', refund, Role.VENDOR)}",
            "tech ticket": f"/t/{sign(runtime, 'ticket', tech, Role.CUSTOMER)}",
            "receipt": f"/r/{sign(runtime, 'receipt', order_id, Role.CUSTOMER)}",
            "invoice": f"/r/{sign(runtime, 'receipt', order_id, Role.CUSTOMER)}/invoice",
            "download": f"/r/{sign(runtime, 'receipt', order_id, Role.CUSTOMER)}/download",
            "to refund": f"/a/to-refund/{sign(runtime, 'to_refund', tech, Role.CUSTOMER)}",
            "refused dispute": f"/a/dispute/{sign(runtime, 'dispute', refund, Role.CUSTOMER)}",
        }
        for name, path in pages.items():
            # the browser asks for English: the party's own language wins
            response = client.get(path, headers={"accept-language": "en-US,en"})
            assert response.status_code in (200, 409), (locale, name, response.status_code)
            assert lang_of(response.text) == locale, (locale, name)
            assert response.headers["content-language"] == locale
            words = english_on(response.text, locale)
            if words:
                found[f"{locale} {name}"] = words
    assert not found, found


def test_pages_without_a_party_follow_the_browser(runtime: Runtime,
                                                  client: TestClient) -> None:
    found: dict[str, list[str]] = {}
    for locale in OTHER_LOCALES:
        accept = {"fr": "fr-CA,fr;q=0.9", "de": "de-AT", "pt": "es;q=0.9,pt-BR;q=0.8"}[locale]
        pages = {
            "bad link": client.get("/t/not-a-token", headers={"accept-language": accept}),
            "no page": client.get("/nowhere", headers={"accept-language": accept}),
            "expired": client.get(
                "/t/" + runtime.tokens.sign("ticket", 1, Role.CUSTOMER,
                                            runtime.clock.now() - timedelta(days=1)),
                headers={"accept-language": accept}),
        }
        for name, response in pages.items():
            assert response.status_code in (404, 410), (locale, name)
            assert lang_of(response.text) == locale, (locale, name)
            words = english_on(response.text, locale)
            if words:
                found[f"{locale} {name}"] = words
    assert not found, found
    english = client.get("/nowhere", headers={"accept-language": "ja, es"})
    assert lang_of(english.text) == "en" and "There is no such page" in english.text


def test_staff_read_the_ticket_in_their_browsers_language(runtime: Runtime,
                                                         client: TestClient) -> None:
    refund, _tech, _order = seed(runtime, "pt")
    path = f"/t/{sign(runtime, 'ticket', refund, Role.STAFF)}"
    assert lang_of(client.get(path, headers={"accept-language": "de"}).text) == "de"
    assert lang_of(client.get(path).text) == "en"


def test_german_pages_say_anbieter_and_show_money_and_dates_the_german_way(
        runtime: Runtime, client: TestClient) -> None:
    refund, _tech, order_id = seed(runtime, "de")
    page = client.get(f"/t/{sign(runtime, 'ticket', refund, Role.CUSTOMER)}").text
    assert "<th>Anbieter</th>" in page and "Vendor" not in page
    assert "47,00\u00a0€" in page  # money as a German reads it
    assert re.search(r"\w+\., \d+\. \w+\.? 2026, \d\d:\d\d \(Europe/Berlin\)", page), page
    receipt = client.get(f"/r/{sign(runtime, 'receipt', order_id, Role.CUSTOMER)}").text
    assert "Rückerstattung beantragen" in receipt and "Request a Refund" not in receipt


def sign_in(rt: Runtime, client: TestClient, address: str) -> None:
    """Signed in to the workplace with the link the sign-in mail carries (in any language)."""
    page = client.get("/signin")
    csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', page.text)
    assert csrf is not None
    assert client.post("/signin", data={"email": address, "csrf": csrf.group(1)}).status_code \
        == 200
    with rt.sessions() as session:
        row = session.execute(select(OutboxMail).where(
            OutboxMail.event == "signin", OutboxMail.recipient == address)
            .order_by(OutboxMail.id.desc()).limit(1)).scalar_one()
        raw = Composer(rt.settings, rt.tokens).compose(session, row, rt.clock.now()).raw
    body = message_from_bytes(raw, policy=policy.default).get_body(("plain",))
    assert body is not None
    link = re.search(r"https?://[^/\s]+(/signin/[a-z2-7]+)", str(body.get_content()))
    assert link is not None
    page = client.get(link.group(1))
    csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', page.text)
    assert csrf is not None
    assert client.post(link.group(1), data={"csrf": csrf.group(1)}).status_code == 303


def test_a_vendors_workplace_is_in_the_vendors_language(runtime: Runtime,
                                                        client: TestClient) -> None:
    found: dict[str, list[str]] = {}
    for locale in OTHER_LOCALES:
        refund, _tech, _order = seed(runtime, locale)
        client.cookies.clear()
        sign_in(runtime, client, f"sales@shop-{locale}.example")
        for path in ("/w/tickets", f"/w/tickets/{refund}", "/w/orders",
                     f"/w/orders/RF{locale.upper()}0001", "/w/standing", "/w/settings"):
            response = client.get(path, headers={"accept-language": "en"})
            assert response.status_code == 200, (locale, path, response.status_code)
            assert lang_of(response.text) == locale, (locale, path)
            words = english_on(response.text, locale)
            if words:
                found[f"{locale} {path}"] = words
    assert not found, found


def test_staff_read_their_workplace_in_their_browsers_language(runtime: Runtime,
                                                              client: TestClient) -> None:
    seed(runtime, "fr")
    sign_in(runtime, client, runtime.settings.staff_email)
    found: dict[str, list[str]] = {}
    for locale in OTHER_LOCALES:
        for path in ("/w/tickets", "/w/orders", "/w/vendors", "/w/review"):
            response = client.get(path, headers={"accept-language": locale})
            assert response.status_code == 200, (locale, path, response.status_code)
            assert lang_of(response.text) == locale, (locale, path)
            words = english_on(response.text, locale)
            if words:
                found[f"{locale} {path}"] = words
    assert not found, found
