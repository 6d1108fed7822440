"""`ticketgw demo`: a small marketplace to try on the embedded defaults, and what to try next.

Two vendors (one English, one French), a product of each kind (digital, physical, subscription)
each, orders from customers in four languages, and one ticket of each type. Run again, it adds
nothing and prints the same steps (the links freshly signed).
"""

from __future__ import annotations

import argparse
import shlex
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.domain.clock import format_instant
from gateway.domain.errors import UserError
from gateway.domain.facts import Role, TicketType
from gateway.domain.links import Links, link_expiry
from gateway.services import orders, tickets, vendors
from gateway.services.context import Actor
from gateway.services.runtime import Runtime
from store.models import Order, Ticket, Vendor
from ticketgw.commands import runtime_for
from ticketgw.output import emit

# (nickname, account address, customer-service address, time zone, locale, partial refunds)
VENDORS: tuple[tuple[str, str, str | None, str, str, bool], ...] = (
    ("acme", "sales@acme.example", "help@acme.example", "America/New_York", "en", True),
    ("atelier", "ventes@atelier.example", None, "Europe/Paris", "fr", False),
)
# (vendor, sku, title, kind, recurring, amount)
PRODUCTS = (
    ("acme", "acme-guide", "The Home Brewing Guide (e-book)", "digital", False, "47.00"),
    ("acme", "acme-kit", "Home Brewing Starter Kit", "physical", False, "89.00"),
    ("acme", "acme-club", "Brewers' Club (monthly)", "digital", True, "19.00"),
    ("atelier", "atelier-cours", "Cours de photographie (vidéo)", "digital", False, "59.00"),
    ("atelier", "atelier-livre", "Le livre de la photo (imprimé)", "physical", False, "35.00"),
    ("atelier", "atelier-club", "Club photo (abonnement mensuel)", "digital", True, "12.00"),
)
# (receipt, sku, customer address, name, locale, days ago)
ORDERS = (
    ("DEMO0001", "acme-guide", "ann@example.org", "Ann Miller", "en", 3),
    ("DEMO0002", "acme-kit", "joao@example.com.br", "João Silva", "pt", 5),
    ("DEMO0003", "acme-club", "lena@example.de", "Lena Weber", "de", 20),
    ("DEMO0004", "atelier-cours", "lea@example.fr", "Léa Martin", "fr", 2),
    ("DEMO0005", "atelier-livre", "ann@example.org", "Ann Miller", "en", 8),
    ("DEMO0006", "atelier-club", "lea@example.fr", "Léa Martin", "fr", 30),
)
# (receipt, type, who opens, reason, comment)
TICKETS = (
    ("DEMO0001", TicketType.TECH_SUPPORT, Role.CUSTOMER, "cannot_download",
     "Hello, the download link in my receipt says the file is not found. Can you help?"),
    ("DEMO0004", TicketType.REFUND, Role.CUSTOMER, "not_as_described",
     "Le cours ne correspond pas à la description, je souhaite un remboursement."),
    ("DEMO0003", TicketType.CANCELLATION, Role.CUSTOMER, "not_using",
     "Bitte kündigen Sie mein Abonnement zum Monatsende."),
)


@dataclass(frozen=True)
class Seeded:
    created: bool
    tickets: dict[str, int]  # receipt → ticket number


def _product_line(sku: str) -> tuple[str, str, str, str, bool, str]:
    return next(p for p in PRODUCTS if p[1] == sku)


def _order_line(receipt: str, sku: str, email: str, name: str, locale: str,
                bought: datetime) -> dict[str, Any]:
    vendor, _, title, kind, recurring, amount = _product_line(sku)
    line: dict[str, Any] = {
        "receipt": receipt, "vendor": vendor, "sku": sku, "title": title, "kind": kind,
        "recurring": recurring, "customer_email": email, "customer_name": name,
        "quantity": 1, "amount": amount, "currency": "USD" if vendor == "acme" else "EUR",
        "purchased_at": format_instant(bought), "locale": locale,
        "payments": [{"at": format_instant(bought), "amount": amount}],
    }
    if recurring:
        line["subscription"] = "active"
    if kind == "physical":
        line.update(shipped=True, shipped_at=format_instant(bought + timedelta(days=1)),
                    return_info=True)
    return line


def _seed(session: Session, runtime: Runtime) -> None:
    ctx = runtime.context()
    staff = Actor(Role.STAFF, source="cli")
    for nickname, account, cs_email, timezone, locale, partial in VENDORS:
        vendors.add_vendor(session, ctx, staff, nickname, account, cs_email=cs_email,
                           timezone=timezone, locale=locale, partial_refunds=partial)
    for receipt, sku, email, name, locale, days in ORDERS:
        bought = ctx.now.replace(microsecond=0) - timedelta(days=days)
        line = orders.parse_line(_order_line(receipt, sku, email, name, locale, bought))
        orders.upsert_order(session, ctx, line, notify=True)
    for receipt, kind, role, reason, comment in TICKETS:
        email = session.execute(select(Order.customer_email).where(
            Order.receipt == receipt)).scalar_one()
        tickets.open_ticket(session, ctx, receipt, kind,
                            Actor(role, email=email, source="web"), reason=reason,
                            comment=comment)


def seed(runtime: Runtime) -> Seeded:
    """The demo marketplace, once (a second run finds its orders and adds nothing); a
    database with other vendors in it is left alone."""
    with runtime.sessions.begin() as session:
        known = session.execute(select(Order.id).where(
            Order.receipt == ORDERS[0][0])).first()
        if known is None:
            if session.execute(select(Vendor.id).limit(1)).first() is not None:
                raise UserError("ticketgw demo fills an empty database, and this one already "
                                "has vendors: run it in a new folder, or point "
                                "TICKETGW_DATABASE_URL at a new database",
                                code="not_empty")
            _seed(session, runtime)
        numbers = dict(session.execute(
            select(Order.receipt, Ticket.number).join(Ticket, Ticket.order_id == Order.id)
            .where(Order.receipt.in_([t[0] for t in TICKETS])).order_by(Ticket.number)).all())
    return Seeded(created=known is None, tickets=numbers)


def _mail_command(smtp: str, sender: str, recipient: str, subject: str, body: str) -> str:
    """A command that sends one mail with curl's SMTP client, ready to paste."""
    message = (f"From: {sender}\nTo: {recipient}\nSubject: {subject}\nMIME-Version: 1.0\n"
               f"Content-Type: text/plain; charset=utf-8\n\n{body}\n")
    return (f"printf %s {shlex.quote(message)} | curl -sS smtp://{smtp} "
            f"--mail-from {sender} --mail-rcpt {recipient} -T -")


def steps(runtime: Runtime, seeded: Seeded) -> list[str]:
    """What to try next, with real links and addresses of this install."""
    settings = runtime.settings
    links = Links(runtime.tokens, settings.base_url, settings.mail_domain)
    expires = link_expiry(runtime.clock.now(), settings.link_ttl_days)
    smtp = f"{settings.smtp_listen.host}:{settings.smtp_listen.port}"
    support = seeded.tickets["DEMO0001"]
    refund = seeded.tickets["DEMO0004"]
    outbox = settings.outbox_maildir if settings.smtp_relay is None else (
        f"the relay {settings.smtp_relay}")
    return [
        ("Demo marketplace ready: vendors acme (en) and atelier (fr), 6 orders, tickets "
         f"#{support} (tech support), #{refund} (refund), "
         f"#{seeded.tickets['DEMO0003']} (cancellation)."
         if seeded.created else "Demo marketplace already there; fresh links below."),
        "1. Start everything in one process (leave it running):\n   ticketgw serve",
        "2. Mail a question as a customer (a new tech-support ticket on order DEMO0002):\n   "
        + _mail_command(smtp, "joao@example.com.br", links.support_address(),
                        "Pedido DEMO0002: o kit chegou sem o manual",
                        "Olá, o kit chegou sem o manual de instruções. Podem ajudar?"),
        f"3. See the mails the gateway wrote in {outbox}/new (one to the customer, one to "
        "the vendor), then answer ticket "
        f"#{support} as the vendor, as if replying to its mail:\n   "
        + _mail_command(smtp, "help@acme.example", links.reply_address(support, Role.VENDOR),
                        f"Re: Ticket Opened - Tech Support Request [Ticket #{support}]",
                        "Hi Ann, here is a new link: the old one expired. Sorry!"),
        "4. Open the pages:\n"
        f"   customer, ticket #{support}: {links.ticket_page(support, Role.CUSTOMER, expires)}\n"
        f"   vendor, ticket #{refund}:   {links.ticket_page(refund, Role.VENDOR, expires)}",
        "5. The vendor workplace: ask for a sign-in link at "
        f"{settings.base_url.rstrip('/')}/signin with help@acme.example, or run\n"
        "   ticketgw vendor link acme",
        "6. Let time pass: refunds execute after 24 business hours unless the vendor saves "
        "the sale:\n   ticketgw status\n   ticketgw deadlines run --at "
        f"{format_instant(runtime.clock.now() + timedelta(days=3))}",
        "7. See what happened to every mail:\n   ticketgw mail list\n   ticketgw outbox list",
    ]


def command(args: argparse.Namespace) -> None:
    """`ticketgw demo`: seed the demo marketplace (once) and print what to try."""
    runtime = runtime_for(args)
    try:
        seeded = seed(runtime)
        lines = steps(runtime, seeded)
    finally:
        runtime.close()
    emit(args, {"created": seeded.created, "tickets": seeded.tickets, "steps": lines},
         lambda: "\n\n".join(lines))
