"""The ticket page's change log and refund in the viewer's words: sentences in their language
with times in their format, where the event log keeps codes (`refund_kind`, `percent`, ISO
times); the refund's percentage and amount as Babel writes them in that language."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal

import pytest
from babel.numbers import format_percent
from starlette.testclient import TestClient

from gateway.domain.facts import Action, Role, TicketType
from gateway.domain.texts import _
from gateway.services import i18n, orders, tickets, vendors
from gateway.services.context import Actor
from gateway.services.runtime import Runtime
from web.app import create_app

STAFF = Actor(Role.STAFF, source="cli")
CUSTOMER = Actor(Role.CUSTOMER, "ana@example.org", source="email")
VENDOR = Actor(Role.VENDOR, "verkauf@acme.example", source="web")
# what the log used to show: codes and raw values
CODES = ("percent →", "→ percent", "refund_kind", "process_at", "T10:", "+00:00", "→ closed")


@pytest.fixture
def client(runtime: Runtime) -> Iterator[TestClient]:
    with TestClient(create_app(runtime), follow_redirects=False) as test_client:
        yield test_client


def percent_refund(rt: Runtime) -> int:
    """A Portuguese customer's refund request to a German vendor, made 30 % by the vendor."""
    with rt.sessions.begin() as session:
        vendors.add_vendor(session, rt.context(), STAFF, "acme", "verkauf@acme.example",
                           timezone="Europe/Berlin", locale="de", partial_refunds=True)
        orders.upsert_order(session, rt.context(), orders.parse_line({
            "receipt": "PTDE0002", "vendor": "acme", "sku": "guide", "title": "O Guia",
            "kind": "digital", "recurring": False, "customer_email": "ana@example.org",
            "customer_name": "Ana", "quantity": 1, "amount": "39.16", "currency": "USD",
            "purchased_at": "2026-11-10T10:00:00Z", "locale": "pt"}))
        ticket = tickets.open_ticket(session, rt.context(), "PTDE0002", TicketType.REFUND,
                                     CUSTOMER, reason="not_received", comment="Nada chegou.")
        tickets.act(session, rt.context(), ticket.number, Action.PERCENT, VENDOR, value="30")
        return ticket.number


def page(rt: Runtime, client: TestClient, number: int, party: Role) -> str:
    token = rt.tokens.sign("ticket", number, party, rt.clock.now() + timedelta(days=90))
    response = client.get(f"/t/{token}")
    assert response.status_code == 200, response.text
    return response.text


@pytest.mark.parametrize(("party", "locale"), [(Role.CUSTOMER, "pt"), (Role.VENDOR, "de")])
def test_the_change_log_is_sentences_in_the_viewers_words(
        runtime: Runtime, client: TestClient, party: Role, locale: str) -> None:
    number = percent_refund(runtime)
    html = page(runtime, client, number, party)
    money = i18n.format_money(Decimal("11.75"), "USD", locale)
    opened = _("Ticket opened as: %(type)s.", type=i18n.label("type", "refund", locale))
    assert i18n.say(opened, locale) in html
    changed = _("The refund type changed from %(old)s to %(new)s: %(amount)s.",
                old=i18n.label("refund_kind", "full", locale),
                new=i18n.label("refund_kind", "percent", locale), amount=money)
    assert i18n.say(changed, locale) in html
    for code in CODES:
        assert code not in html, code


@pytest.mark.parametrize(("party", "locale"), [(Role.CUSTOMER, "pt"), (Role.VENDOR, "de"),
                                               (Role.CUSTOMER, "en")])
def test_the_refund_shows_its_percentage_and_amount_in_the_viewers_format(
        runtime: Runtime, client: TestClient, party: Role, locale: str) -> None:
    number = percent_refund(runtime)
    if locale == "en":
        with runtime.sessions.begin() as session:
            tickets.find_ticket(session, number).order.locale = "en"
    html = page(runtime, client, number, party)
    shown = (f"{i18n.label('refund_kind', 'percent', locale)}{i18n.colon(locale)}"
             f"{format_percent(Decimal('0.3'), locale=locale)} "
             f"({i18n.format_money(Decimal('11.75'), 'USD', locale)})")
    assert shown in html


def test_a_dispute_and_the_opener_read_as_whole_sentences(
        runtime: Runtime, client: TestClient) -> None:
    """The dispute names the request it brings back, and "opened by" the party, each as one
    sentence of the viewer's language (never a label put into a sentence)."""
    number = percent_refund(runtime)
    with runtime.sessions.begin() as session:
        tickets.act(session, runtime.context(), number, Action.TECHSUPPORT, VENDOR)
        tickets.act(session, runtime.context(), number, Action.DISPUTE, CUSTOMER)
    pt = page(runtime, client, number, Role.CUSTOMER)
    assert ("O consumidor contestou a alteração; o tíquete voltou a ser uma solicitação de "
            "reembolso aberta.") in pt
    assert "(pelo consumidor)" in pt
    de = page(runtime, client, number, Role.VENDOR)
    assert ("Der Kunde hat der Änderung widersprochen; das Ticket ist wieder ein offener "
            "Rückerstattungsantrag.") in de
    assert "(vom Kunden)" in de
