"""Inbound fixtures: a seeded marketplace, a real SMTP listener on a free port, mail builders."""

from __future__ import annotations

import asyncio
import re
import smtplib
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import make_msgid

import pytest

from gateway.domain.facts import Role, TicketType
from gateway.services import orders, tickets, vendors
from gateway.services.context import Actor
from gateway.services.runtime import Runtime
from inbound.smtp import Listener, start_smtp
from ticketgw.testing.runtime import START

DOMAIN = "tickets.localhost"
CUSTOMER = "ann@example.org"
VENDOR = "owner@acme.example"
VENDOR_CS = "help@acme.example"
STRANGER = "mallory@evil.example"
RECEIPT = "ABCD1234"
SUB_RECEIPT = "SUBS5678"


@dataclass
class World:
    runtime: Runtime

    def address(self, local: str) -> str:
        return f"{local}@{DOMAIN}"

    def reply_address(self, number: int, party: Role) -> str:
        return f"reply+{self.runtime.tokens.reply_token(number, party)}@{DOMAIN}"

    def open(self, ticket_type: TicketType = TicketType.TECH_SUPPORT,
             receipt: str = RECEIPT, role: Role = Role.CUSTOMER) -> int:
        with self.runtime.sessions.begin() as session:
            ticket = tickets.open_ticket(session, self.runtime.context(), receipt, ticket_type,
                                         Actor(role, source="cli"), comment="first message")
            return ticket.number

    def ticket(self, number: int) -> dict[str, object]:
        from gateway.services.views import ticket_view

        with self.runtime.sessions() as session:
            return ticket_view(tickets.find_ticket(session, number))


def seed(runtime: Runtime) -> World:
    ctx = runtime.context()
    staff = Actor(Role.STAFF, source="cli")
    with runtime.sessions.begin() as session:
        vendors.add_vendor(session, ctx, staff, "acme", VENDOR, cs_email=VENDOR_CS,
                           timezone="Europe/Berlin", partial_refunds=True)
        bought = (START - timedelta(days=2)).isoformat()
        for receipt, recurring in ((RECEIPT, False), (SUB_RECEIPT, True)):
            line = orders.parse_line({
                "receipt": receipt, "vendor": "acme", "sku": f"sku-{receipt}",
                "title": "Guide", "kind": "digital", "recurring": recurring,
                "customer_email": CUSTOMER if receipt == RECEIPT else "bob@example.org",
                "customer_name": "Ann", "quantity": 1, "amount": "47.00", "currency": "USD",
                "purchased_at": bought, "locale": "en",
                **({"subscription": "active"} if recurring else {}),
            })
            orders.upsert_order(session, ctx, line)
    return World(runtime)


@pytest.fixture
def world(runtime: Runtime) -> World:
    return seed(runtime)


def make_mail(*, sender: str = CUSTOMER, to: str = f"support@{DOMAIN}", subject: str = "Help",
              body: str = "Hello, the download does not work.", headers: dict[str, str] | None
              = None, message_id: str | None = None) -> bytes:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    msg["Message-ID"] = message_id or make_msgid(domain="example.org")
    for name, value in (headers or {}).items():
        msg[name] = value
    msg.set_content(body)
    return msg.as_bytes(policy=SMTP_POLICY)


def crlf(raw: bytes) -> bytes:
    """SMTP lines end in CRLF (smtplib sends bytes as they are)."""
    return re.sub(rb"\r?\n", b"\r\n", raw)


class SmtpServer:
    """The real listener, in its own event loop on a thread."""

    def __init__(self, runtime: Runtime, **options: object) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.listener: Listener = asyncio.run_coroutine_threadsafe(
            start_smtp(runtime, "127.0.0.1", 0, **options), self.loop).result(10)  # type: ignore[arg-type]
        self.port = self.listener.port

    def client(self) -> smtplib.SMTP:
        client = smtplib.SMTP("127.0.0.1", self.port, timeout=30)
        client.ehlo("client.example")
        return client

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.listener.stop(5), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture
def smtp(world: World) -> Iterator[SmtpServer]:
    server = SmtpServer(world.runtime)
    yield server
    server.stop()


def send(server: SmtpServer, raw: bytes, *, rcpt: str, mail_from: str = CUSTOMER
         ) -> tuple[int, bytes]:
    """One transaction; the answer at end of DATA (or at the stage that refused)."""
    client = server.client()
    try:
        code, text = client.mail(mail_from)
        if code != 250:
            return code, text
        code, text = client.rcpt(rcpt)
        if code != 250:
            return code, text
        return client.data(crlf(raw))
    finally:
        client.close()
