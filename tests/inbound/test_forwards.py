"""A customer's mail forwarded to support@ by the vendor or staff is filed under the customer
and the order, marked with who forwarded it, and never acts. Samples: tests/data/forward_*.eml
(Gmail and Outlook in four languages, Apple Mail, an attached message), sent through the
real SMTP listener."""

from __future__ import annotations

import dataclasses
import re
from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest
from sqlalchemy import select, update
from starlette.testclient import TestClient

from gateway.domain.facts import Action, Role, TicketType
from gateway.services import orders, tickets, vendors
from gateway.services.context import Actor
from inbound.forwards import find_inline
from store.models import Message, OutboxMail, Ticket, Vendor
from tests.gateway.test_notice_language import notice_text
from tests.inbound.conftest import (
    CUSTOMER,
    DOMAIN,
    RECEIPT,
    STRANGER,
    SUB_RECEIPT,
    VENDOR_CS,
    SmtpServer,
    World,
    send,
)
from ticketgw.testing.runtime import START
from web.app import create_app

DATA = Path(__file__).resolve().parents[1] / "data"
SAMPLES = sorted(p.name for p in DATA.glob("forward_*.eml"))
GLOBEX = "help@globex.example"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(64))
OPENING = ("Hello, the download link", "Bonjour, le lien", "Hallo, der Download-Link",
           "Olá, o link")


def forward_sample(name: str, sender: str = VENDOR_CS, *, ticket: int | None = None,
                   headers: dict[str, str] | None = None) -> bytes:
    """The sample `name` as `sender` forwards it; `ticket` puts `[Ticket #N]` in its subject
    (as when the forwarded mail answered a ticket mail), `headers` go on top."""
    raw = (DATA / name).read_bytes()
    raw = raw.replace(b"Acme Help <help@acme.example>\n", f"<{sender}>\n".encode(), 1)
    if ticket is not None:  # the first Subject: line is the forward's own
        raw = re.sub(rb"(?m)^(Subject: .*)$", rb"\1 [Ticket #%d]" % ticket, raw, count=1)
    top = "".join(f"{key}: {value}\n" for key, value in (headers or {}).items())
    return top.encode() + raw


def forward(smtp: SmtpServer, raw: bytes, sender: str = VENDOR_CS) -> tuple[int, bytes]:
    """Send `raw` to support@ over SMTP from `sender`; the answer at end of DATA."""
    return send(smtp, raw, rcpt=f"support@{DOMAIN}", mail_from=sender)


def _tickets(world: World) -> list[tuple[int, str, str, str]]:
    with world.runtime.sessions() as session:
        return [(t.number, t.type, t.status, t.order.receipt)
                for t in session.scalars(select(Ticket).order_by(Ticket.id))]


def _messages(world: World) -> list[tuple[str, str | None, str | None, str]]:
    with world.runtime.sessions() as session:
        return [(m.author_role, m.author_email, m.forwarded_by, m.text)
                for m in session.scalars(select(Message).order_by(Message.id))]


def test_every_sample_is_a_forward_of_the_customers_mail() -> None:
    assert len(SAMPLES) == 13


@pytest.mark.parametrize("name", SAMPLES)
def test_a_vendors_forward_is_filed_under_the_customer(smtp: SmtpServer, world: World,
                                                       name: str) -> None:
    code, answer = forward(smtp, forward_sample(name))
    assert code == 250, answer
    [(number, kind, status, receipt)] = _tickets(world)
    assert (kind, status, receipt) == ("tech_support", "open", RECEIPT)  # #refund did nothing
    [(role, author, forwarded_by, text)] = _messages(world)
    assert (role, author, forwarded_by) == ("customer", CUSTOMER, VENDOR_CS)
    assert text.startswith(OPENING) and "#refund" in text  # the customer's words, kept as text
    assert "Forwarding this one" not in text and "Leite das" not in text


def test_a_forward_threads_to_the_customers_open_ticket(smtp: SmtpServer, world: World) -> None:
    number = world.open(TicketType.TECH_SUPPORT)
    code, _ = forward(smtp, forward_sample("forward_gmail_fr.eml"))
    assert code == 250
    assert [t[0] for t in _tickets(world)] == [number]
    assert _messages(world)[-1][:3] == ("customer", CUSTOMER, VENDOR_CS)


def test_staff_may_forward(smtp: SmtpServer, world: World) -> None:
    staff = world.runtime.settings.staff_email
    code, _ = forward(smtp, forward_sample("forward_outlook_de.eml", staff), staff)
    assert code == 250
    assert _messages(world)[0][:3] == ("customer", CUSTOMER, staff)


def test_a_strangers_forward_is_refused_and_changes_nothing(smtp: SmtpServer,
                                                            world: World) -> None:
    code, _ = forward(smtp, forward_sample("forward_apple_en.eml", STRANGER), STRANGER)
    assert code == 550
    assert _tickets(world) == [] and _messages(world) == []


def test_the_customers_own_forward_is_their_mail_not_marked(smtp: SmtpServer,
                                                           world: World) -> None:
    code, _ = forward(smtp, forward_sample("forward_gmail_en.eml", CUSTOMER), CUSTOMER)
    assert code == 250
    assert _messages(world)[0][:3] == ("customer", CUSTOMER, None)


@pytest.mark.parametrize("marker", [
    "Début du message réexpédié :", "Anfang der weitergeleiteten Nachricht:",
    "Início da mensagem reencaminhada:", "---------- Mensagem encaminhada ---------",
])
def test_apple_mail_and_gmail_markers_in_other_languages(marker: str) -> None:
    text = f"fyi\n\n{marker}\n\nDe: \"Ann B\" <Ann@Example.org>\nDate: x\n\nthe text\n"
    found = find_inline(text, "no forwarding subject")
    assert found is not None
    assert (found.original_from, found.text, found.note) == ("ann@example.org", "the text",
                                                            "fyi")


def test_a_reply_quoting_outlook_history_is_no_forward() -> None:
    text = ("Thanks!\n\n-----Original Message-----\nFrom: Support <support@x.example>\n"
            "Sent: Monday\nSubject: Re: help\n\nold text")
    assert find_inline(text, "RE: help") is None
    assert find_inline(text, "FW: help") is not None


# --- a forward that names a ticket: `[Ticket #N]` in its subject, or References -------------


def _on(world: World, number: int) -> list[tuple[str, str | None, str | None]]:
    """(role, author, forwarded by) of each message on ticket `number`."""
    with world.runtime.sessions() as session:
        ticket = session.scalars(select(Ticket).where(Ticket.number == number)).one()
        return [(m.author_role, m.author_email, m.forwarded_by) for m in ticket.messages]


def _notices(world: World) -> list[tuple[str, str, str | None]]:
    """(recipient, party, kind) of every notice mailed."""
    with world.runtime.sessions() as session:
        rows = session.scalars(select(OutboxMail).where(OutboxMail.event == "notice")
                               .order_by(OutboxMail.id))
        return [(r.recipient, r.party, r.notice_kind) for r in rows]


def _second_shop(world: World) -> str:
    """Another vendor, Globex, who also sold Ann something; its receipt."""
    ctx = world.runtime.context()
    with world.runtime.sessions.begin() as session:
        vendors.add_vendor(session, ctx, Actor(Role.STAFF, source="cli"), "globex",
                           GLOBEX, timezone="Europe/Paris")
        orders.upsert_order(session, ctx, orders.parse_line({
            "receipt": "GLOB0001", "vendor": "globex", "sku": "g-1", "title": "Course",
            "kind": "digital", "customer_email": CUSTOMER, "customer_name": "Ann",
            "quantity": 1, "amount": "20.00", "currency": "EUR",
            "purchased_at": (START - timedelta(days=1)).isoformat(), "locale": "en"}))
    return "GLOB0001"


@pytest.mark.parametrize("name", SAMPLES)
def test_a_forward_naming_the_customers_ticket_lands_there_as_theirs(
        smtp: SmtpServer, world: World, name: str) -> None:
    # a refund, so the named ticket is told apart from the order's open tech-support ticket
    number = world.open(TicketType.REFUND)
    before = world.ticket(number)
    raw = forward_sample(name, ticket=number)
    assert forward(smtp, raw)[0] == 250
    assert forward(smtp, raw)[0] == 250  # the same mail again: taken once
    assert _tickets(world) == [(number, "refund", "open", RECEIPT)]
    assert _on(world, number) == [("customer", CUSTOMER, None),
                                  ("customer", CUSTOMER, VENDOR_CS)]
    text = _messages(world)[-1][3]
    assert text.startswith(OPENING) and "#refund" in text
    assert _notices(world) == []  # the customer's #refund is their words, not a command
    after = world.ticket(number)
    assert (after["process_at"], after["refund_kind"]) == (before["process_at"],
                                                          before["refund_kind"])


def test_staff_forward_naming_the_customers_ticket_lands_there(smtp: SmtpServer,
                                                               world: World) -> None:
    staff = world.runtime.settings.staff_email
    number = world.open(TicketType.REFUND)
    assert forward(smtp, forward_sample("forward_gmail_de.eml", staff, ticket=number),
                   staff)[0] == 250
    assert _on(world, number)[-1] == ("customer", CUSTOMER, staff)


def test_a_forward_whose_references_name_the_customers_ticket_lands_there(
        smtp: SmtpServer, world: World) -> None:
    # Gmail and Thunderbird keep the forwarded mail's References: here, our ticket mail
    number = world.open(TicketType.REFUND)
    with world.runtime.sessions() as session:
        ours = session.scalars(select(OutboxMail.message_id).join(Ticket)
                               .where(Ticket.number == number)).first()
    assert ours
    raw = forward_sample("forward_gmail_en.eml", headers={"References": ours})
    assert forward(smtp, raw)[0] == 250
    assert _on(world, number)[-1] == ("customer", CUSTOMER, VENDOR_CS)
    assert len(_tickets(world)) == 1


@pytest.mark.parametrize("name", ["forward_outlook_fr.eml", "forward_gmail_pt.eml"])
def test_a_forward_naming_another_customers_ticket_goes_to_its_own_customer(
        smtp: SmtpServer, world: World, name: str) -> None:
    bobs = world.open(TicketType.TECH_SUPPORT, receipt=SUB_RECEIPT)  # same vendor, Bob's
    assert forward(smtp, forward_sample(name, ticket=bobs))[0] == 250
    assert _on(world, bobs) == [("customer", "bob@example.org", None)]
    [_, (number, kind, _, receipt)] = _tickets(world)
    assert (kind, receipt) == ("tech_support", RECEIPT)
    assert _on(world, number) == [("customer", CUSTOMER, VENDOR_CS)]


def test_a_forward_naming_an_unknown_ticket_goes_to_the_customers_order(
        smtp: SmtpServer, world: World) -> None:
    assert forward(smtp, forward_sample("forward_outlook_en.eml", ticket=9999))[0] == 250
    [(number, _, _, receipt)] = _tickets(world)
    assert receipt == RECEIPT and _on(world, number) == [("customer", CUSTOMER, VENDOR_CS)]


def test_a_ticket_the_forwarder_cannot_see_is_passed_over_for_its_own_order(
        smtp: SmtpServer, world: World) -> None:
    # Ann's ticket with Acme named in a mail Globex forwards: Globex gets no word on it, and
    # Ann's mail lands on her order with Globex
    globex_receipt = _second_shop(world)
    acme = world.open(TicketType.REFUND)
    assert forward(smtp, forward_sample("forward_gmail_fr.eml", GLOBEX, ticket=acme),
                   GLOBEX)[0] == 250
    assert _on(world, acme) == [("customer", CUSTOMER, None)]
    [_, (number, kind, _, receipt)] = _tickets(world)
    assert (kind, receipt) == ("tech_support", globex_receipt)
    assert _on(world, number) == [("customer", CUSTOMER, GLOBEX)]


def test_a_strangers_forward_naming_a_ticket_is_refused(smtp: SmtpServer,
                                                        world: World) -> None:
    number = world.open(TicketType.REFUND)
    code, answer = forward(smtp, forward_sample("forward_outlook_de.eml", STRANGER,
                                                ticket=number), STRANGER)
    assert code == 550 and b"5.7.1" in answer
    assert _on(world, number) == [("customer", CUSTOMER, None)]
    assert len(_tickets(world)) == 1


@pytest.mark.parametrize("names_ticket", [True, False])
def test_a_vendor_forwarding_our_own_mail_writes_as_itself(smtp: SmtpServer, world: World,
                                                           names_ticket: bool) -> None:
    # no customer wrote a ticket (or sale) mail of ours: what the vendor sends is its own
    # comment, never a customer's message from our address
    number = world.open(TicketType.REFUND)
    raw = forward_sample("forward_gmail_en.eml", ticket=number if names_ticket else None)
    raw = raw.replace(b"Ann Buyer <ann@example.org>",
                      f"Acme via ticketgw <support@{DOMAIN}>".encode()).replace(
        b"Hello, the download", f"Order {RECEIPT}. Hello, the download".encode())
    assert forward(smtp, raw)[0] == 250
    authors = {m[:3] for m in _messages(world)}
    assert authors == {("customer", CUSTOMER, None), ("vendor", VENDOR_CS, None)}


def test_an_attached_forward_keeps_the_customers_own_attachments(smtp: SmtpServer,
                                                                 world: World) -> None:
    # Outlook's "forward as attachment": the customer's screenshot is inside the attached mail
    inner = EmailMessage()
    inner["From"] = "Ann Buyer <ann@example.org>"
    inner["To"] = VENDOR_CS
    inner["Subject"] = "Download broken"
    inner.set_content("Hello, the download link fails, see the screenshot.")
    inner.add_attachment(PNG, maintype="image", subtype="png", filename="screenshot.png")
    outer = EmailMessage()
    outer["From"] = VENDOR_CS
    outer["To"] = f"support@{DOMAIN}"
    outer["Subject"] = "FW: Download broken"
    outer.set_content("Forwarding this one.")
    outer.add_attachment(inner)
    assert forward(smtp, outer.as_bytes())[0] == 250
    with world.runtime.sessions() as session:
        [message] = session.scalars(select(Message)).all()
        kept = {(a.filename, a.content_type, a.data) for a in message.attachments}
    assert (message.author_email, message.forwarded_by) == (CUSTOMER, VENDOR_CS)
    assert ("screenshot.png", "image/png", PNG) in kept
    assert any(kind == "message/rfc822" for _, kind, _ in kept)  # the original, whole


def test_a_verified_forwarder_still_makes_nothing_in_the_forward_act(
        smtp: SmtpServer, world: World) -> None:
    # DMARC vouches for the vendor's address, not for who wrote the forwarded words: the
    # customer's #refund and the vendor's own #close above the forward are text
    world.runtime.settings = dataclasses.replace(world.runtime.settings,
                                                 trusted_authserv_id="mx.tickets.localhost")
    with world.runtime.sessions.begin() as session:
        session.execute(update(Vendor).values(locale="de"))
    number = world.open(TicketType.TECH_SUPPORT)
    raw = forward_sample("forward_outlook_en.eml", ticket=number, headers={
        "Authentication-Results": "mx.tickets.localhost; dmarc=pass header.from=acme.example"})
    raw = raw.replace(b"Forwarding this one", b"#close\nForwarding this one")
    code, answer = forward(smtp, raw)
    assert code == 250 and b"commands refused" in answer
    assert _tickets(world) == [(number, "tech_support", "open", RECEIPT)]
    assert _on(world, number)[-1] == ("customer", CUSTOMER, VENDOR_CS)
    # the forwarder is told its #close did nothing, in its language; the customer hears of
    # no command
    assert _notices(world) == [(VENDOR_CS, "vendor", "command_refused")]
    assert (f"Ihre weitergeleitete E-Mail wurde dem Ticket #{number} als Nachricht des Kunden "
            "hinzugefügt, aber ihre Befehle wurden nicht ausgeführt") in notice_text(
                world.runtime, VENDOR_CS)[0]


def test_a_forward_naming_the_customers_closed_ticket_follows_it_up(
        smtp: SmtpServer, world: World) -> None:
    # as the customer's own reply would (SPEC 11.9): a follow-up ticket, the closed one kept
    number = world.open(TicketType.TECH_SUPPORT)
    with world.runtime.sessions.begin() as session:
        tickets.act(session, world.runtime.context(), number, Action.CLOSE,
                    Actor(Role.CUSTOMER, source="cli"))
    assert forward(smtp, forward_sample("forward_gmail_pt.eml", ticket=number))[0] == 250
    [closed, (follow_up, kind, status, receipt)] = _tickets(world)
    assert closed == (number, "tech_support", "closed", RECEIPT)
    assert (kind, status, receipt) == ("tech_support", "open", RECEIPT)
    assert _on(world, follow_up) == [("customer", CUSTOMER, VENDOR_CS)]


def test_the_forwarders_note_is_not_shown_to_the_customer(smtp: SmtpServer,
                                                         world: World) -> None:
    """The ticket page keeps a forward's whole mail one click away for the vendor and staff
    (their note to support, "Forwarding this one to support, see below.", is in it), but
    the customer's page shows only their own words."""
    assert forward(smtp, forward_sample("forward_gmail_en.eml"))[0] == 250
    [(number, _, _, _)] = _tickets(world)
    runtime = world.runtime
    pages = {}
    with TestClient(create_app(runtime)) as client:
        for party in (Role.CUSTOMER, Role.VENDOR, Role.STAFF):
            token = runtime.tokens.sign("ticket", number, party,
                                        runtime.clock.now() + timedelta(days=1))
            response = client.get(f"/t/{token}")
            assert response.status_code == 200
            pages[party] = response.text
    assert "Hello, the download link for my guide gives error 404." in pages[Role.CUSTOMER]
    assert "Forwarding this one" not in pages[Role.CUSTOMER]
    assert "Whole message as received" not in pages[Role.CUSTOMER]
    for party in (Role.VENDOR, Role.STAFF):
        assert "Forwarding this one to support, see below." in pages[party]
