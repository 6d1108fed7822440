"""The ticket page in its viewer's words: the deadline as a sentence in the viewer's zone
(the vendor's own, "your time"; the customer's is unknown, so the zone is named), and a
processed ticket that reads as processed."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from starlette.testclient import TestClient

from gateway.domain.facts import Role, TicketType
from gateway.domain.texts import _
from gateway.services import i18n, orders, tickets, vendors
from gateway.services.context import Actor
from gateway.services.deadlines import run_due
from gateway.services.runtime import Runtime
from store.models import Ticket
from web.app import create_app

STAFF = Actor(Role.STAFF, source="cli")
CUSTOMER = Actor(Role.CUSTOMER, "ana@example.org", source="email")
PAGE_TEXTS = ("Will be processed at", "Será processado em", "Wird bearbeitet am")


@pytest.fixture
def client(runtime: Runtime) -> Iterator[TestClient]:
    with TestClient(create_app(runtime), follow_redirects=False) as test_client:
        yield test_client


def refund_ticket(rt: Runtime) -> tuple[int, datetime]:
    """A Portuguese customer's refund request to a German vendor in Berlin: (number,
    process_at)."""
    with rt.sessions.begin() as session:
        vendors.add_vendor(session, rt.context(), STAFF, "acme", "verkauf@acme.example",
                           timezone="Europe/Berlin", locale="de")
        orders.upsert_order(session, rt.context(), orders.parse_line({
            "receipt": "PTDE0001", "vendor": "acme", "sku": "guide", "title": "O Guia",
            "kind": "digital", "recurring": False, "customer_email": "ana@example.org",
            "customer_name": "Ana", "quantity": 1, "amount": "39.16", "currency": "USD",
            "purchased_at": "2026-11-10T10:00:00Z", "locale": "pt"}))
        ticket = tickets.open_ticket(session, rt.context(), "PTDE0001", TicketType.REFUND,
                                     CUSTOMER, reason="not_received", comment="Nada chegou.")
        assert ticket.process_at is not None
        return ticket.number, ticket.process_at


def page(rt: Runtime, client: TestClient, number: int, party: Role) -> str:
    token = rt.tokens.sign("ticket", number, party, rt.clock.now() + timedelta(days=90))
    response = client.get(f"/t/{token}")
    assert response.status_code == 200, response.text
    return response.text


def test_the_deadline_is_a_sentence_in_the_viewers_words_and_zone(
        runtime: Runtime, client: TestClient) -> None:
    number, due = refund_ticket(runtime)
    vendor = page(runtime, client, number, Role.VENDOR)
    vendor_when = i18n.format_when(due, "de", "Europe/Berlin", with_zone=False)
    assert i18n.say(_("The customer will be refunded on %(when)s your time unless you change "
                      "the ticket before then.", when=vendor_when), "de") in vendor
    assert "Ihrer Zeit" in vendor  # "your time", in German
    customer = page(runtime, client, number, Role.CUSTOMER)
    customer_when = i18n.format_when(due, "pt", "Europe/Berlin")
    assert customer_when.endswith("(Europe/Berlin)")  # the customer is told whose time it is
    assert i18n.say(_("You will be refunded on %(when)s unless the vendor changes the ticket "
                      "before then.", when=customer_when), "pt") in customer
    for text in PAGE_TEXTS:
        assert text not in vendor and text not in customer


def test_a_processed_ticket_reads_as_processed(runtime: Runtime, client: TestClient) -> None:
    number, due = refund_ticket(runtime)
    runtime.clock.advance(due - runtime.clock.now() + timedelta(minutes=1))  # type: ignore[attr-defined]
    run_due(runtime.sessions, runtime.context, runtime.refunds)
    with runtime.sessions() as session:
        row = session.query(Ticket).filter_by(number=number).one()
        assert (row.status, row.close_reason) == ("closed", "processed")
    for party in (Role.CUSTOMER, Role.VENDOR):
        shown = page(runtime, client, number, party)
        assert 'class="deadline"' not in shown
        for text in PAGE_TEXTS:
            assert text not in shown
        assert i18n.label("close_reason", "processed", "pt" if party is Role.CUSTOMER
                          else "de") in shown
