"""The receipt page lists the order's tickets, each linked by a fresh customer link; a
refusal that names a ticket links it; a fully refunded order offers no refund."""

from __future__ import annotations

import html as html_lib
import re
from collections.abc import Iterator
from datetime import timedelta

import pytest
from starlette.testclient import TestClient

from gateway.domain.facts import Role, TicketType
from gateway.services import i18n, orders, tickets, vendors
from gateway.services.context import Actor
from gateway.services.runtime import Runtime
from store.models import Order
from web.app import create_app

STAFF = Actor(Role.STAFF, source="cli")
CUSTOMER = Actor(Role.CUSTOMER, "ana@example.org", source="email")


@pytest.fixture
def client(runtime: Runtime) -> Iterator[TestClient]:
    with TestClient(create_app(runtime), follow_redirects=False) as test_client:
        yield test_client


def order_with_request(rt: Runtime) -> tuple[str, int]:
    """A Portuguese customer's order with an open refund request: (receipt page, number)."""
    with rt.sessions.begin() as session:
        vendors.add_vendor(session, rt.context(), STAFF, "acme", "verkauf@acme.example",
                           timezone="Europe/Berlin", locale="de")
        order = orders.upsert_order(session, rt.context(), orders.parse_line({
            "receipt": "PTDE0003", "vendor": "acme", "sku": "guide", "title": "O Guia",
            "kind": "digital", "recurring": False, "customer_email": "ana@example.org",
            "customer_name": "Ana", "quantity": 1, "amount": "39.16", "currency": "USD",
            "purchased_at": "2026-11-10T10:00:00Z", "locale": "pt"}))
        ticket = tickets.open_ticket(session, rt.context(), "PTDE0003", TicketType.REFUND,
                                     CUSTOMER, reason="not_received", comment="Nada chegou.")
        order_id, number = ticket.order_id, ticket.number
    assert order is not None
    token = rt.tokens.sign("receipt", order_id, Role.CUSTOMER,
                           rt.clock.now() + timedelta(days=90))
    return f"/r/{token}", number


def opens_ticket(client: TestClient, href: str, number: int) -> None:
    page = client.get(html_lib.unescape(href))
    assert page.status_code == 200, page.text
    assert i18n.gettext("Ticket #%(n)s", locale="pt") % {"n": number} in page.text
    assert "consumidor" in page.text  # the customer's view


def test_the_receipt_lists_the_orders_tickets_each_linked(
        runtime: Runtime, client: TestClient) -> None:
    path, number = order_with_request(runtime)
    page = client.get(path).text
    found = re.search(r'<a href="(/t/[^"]+)">' + re.escape(
        i18n.gettext("Ticket #%(n)s", locale="pt") % {"n": number}) + "</a>", page)
    assert found, page
    assert i18n.label("type", "refund", "pt") in page and i18n.label("status", "open", "pt") in page
    opens_ticket(client, found.group(1), number)


def test_a_refusal_links_the_ticket_it_names(runtime: Runtime, client: TestClient) -> None:
    path, number = order_with_request(runtime)
    csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', client.get(path).text)
    assert csrf
    refused = client.post(path, data={"csrf": csrf.group(1), "action": "open", "type": "refund",
                                      "reason": "not_received", "comment": "De novo."})
    assert refused.status_code == 409, refused.text
    link = i18n.gettext("Open ticket #%(n)s", locale="pt") % {"n": number}
    found = re.search(r'<a href="(/t/[^"]+)">' + re.escape(link) + "</a>", refused.text)
    assert found, refused.text
    opens_ticket(client, found.group(1), number)


def test_a_fully_refunded_order_offers_no_refund(runtime: Runtime, client: TestClient) -> None:
    path, _number = order_with_request(runtime)
    ask = i18n.gettext("Request a Refund", locale="pt")
    assert ask in client.get(path).text
    with runtime.sessions.begin() as session:
        order = session.query(Order).filter_by(receipt="PTDE0003").one()
        order.refunded_amount = order.amount  # as the refund run leaves it
    page = client.get(path).text
    assert ask not in page
    assert i18n.gettext("Request Tech Support", locale="pt") in page
