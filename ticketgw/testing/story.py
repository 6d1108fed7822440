"""Shared setup for the outbound tests: a vendor, an order, a ticket opened through the services."""

from __future__ import annotations

from datetime import datetime, timedelta
from email.message import EmailMessage

from sqlalchemy import select

from gateway.domain.facts import Role, TicketType
from gateway.services import orders, tickets, vendors
from gateway.services.context import Actor
from gateway.services.runtime import Runtime
from store.models import OutboxMail, Vendor
from ticketgw.testing.runtime import START

CUSTOMER = "ann@example.org"
VENDOR = "sales@acme.example"
RECEIPT = "ABCD1234"


def seed_order(runtime: Runtime, *, receipt: str = RECEIPT, vendor_locale: str = "de",
               customer_locale: str = "fr", notify: bool = False,
               purchased_at: datetime | None = None) -> None:
    with runtime.sessions.begin() as session:
        ctx = runtime.context()
        if session.execute(select(Vendor.id).limit(1)).first() is None:
            vendors.add_vendor(session, ctx, Actor(Role.STAFF), "acme", VENDOR,
                               timezone="Europe/Berlin", locale=vendor_locale)
        line = orders.parse_line({
            "receipt": receipt, "vendor": "acme", "sku": "ebook-1", "title": "Guide",
            "kind": "digital", "recurring": False, "customer_email": CUSTOMER,
            "customer_name": "Ann Example", "quantity": 1, "amount": "47.00",
            "currency": "USD",
            "purchased_at": (purchased_at or START - timedelta(days=9)).isoformat(),
            "locale": customer_locale,
        })
        orders.upsert_order(session, ctx, line, notify=notify)


def open_refund(runtime: Runtime, *, receipt: str = RECEIPT,
                comment: str = "It does not work at all.") -> int:
    with runtime.sessions.begin() as session:
        ticket = tickets.open_ticket(session, runtime.context(), receipt, TicketType.REFUND,
                                     Actor(Role.CUSTOMER, email=CUSTOMER, source="web"),
                                     reason="not_satisfied", comment=comment)
        return ticket.number


def outbox(runtime: Runtime) -> list[OutboxMail]:
    with runtime.sessions() as session:
        return list(session.execute(select(OutboxMail).order_by(OutboxMail.id)).scalars())


def states(runtime: Runtime) -> dict[int, str]:
    return {row.id: row.state for row in outbox(runtime)}


def text_part(message: EmailMessage) -> str:
    part = message.get_body(("plain",))
    assert part is not None
    return str(part.get_content())
