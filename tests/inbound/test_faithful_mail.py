"""Faithful mail, through the real SMTP listener and a real SMTP sink: the customer's own
subject and thread, a sender's name, HTML mail without Markdown, quote-only replies refused,
unverified senders marked, and the #commands each reader may use."""

from __future__ import annotations

from collections.abc import Iterator
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path

import pytest
from sqlalchemy import select

from gateway.domain.facts import Role
from outbound.deliver import Deliverer
from store.models import InboundMail, Message, OutboxMail, Ticket
from tests.inbound.conftest import (
    CUSTOMER,
    DOMAIN,
    VENDOR_CS,
    SmtpServer,
    World,
    make_mail,
    seed,
    send,
)
from ticketgw.testing.runtime import make_runtime
from ticketgw.testing.smtp_sink import SmtpSink


@pytest.fixture
def relayed(migrated_url: str, tmp_path: Path, smtp_sink: SmtpSink) -> Iterator[World]:
    """The seeded marketplace, its mail relayed to the SMTP sink."""
    runtime = make_runtime(migrated_url, tmp_path, smtp_relay=smtp_sink.address)
    yield seed(runtime)
    runtime.close()


@pytest.fixture
def listener(relayed: World) -> Iterator[SmtpServer]:
    server = SmtpServer(relayed.runtime)
    yield server
    server.stop()


def deliver(world: World, sink: SmtpSink) -> list[EmailMessage]:
    """Send every pending mail to the sink; the mails it holds, oldest first."""
    with world.runtime.sessions() as session:
        ids = list(session.execute(select(OutboxMail.id).where(OutboxMail.state == "pending")
                                   .order_by(OutboxMail.id)).scalars())
    deliverer = Deliverer(world.runtime)
    try:
        for outbox_id in ids:
            deliverer.deliver(outbox_id)
    finally:
        deliverer.close()
    return [m.message for m in sink.wait_for(len(ids), timeout=30)]


def to(mails: list[EmailMessage], address: str, event: str | None = None) -> EmailMessage:
    found = [m for m in mails if m["To"].addresses[0].addr_spec == address
             and (event is None or m["X-Ticket-Event"] == event)]
    assert found, f"no {event} mail to {address}"
    return found[-1]


def text_of(mail: EmailMessage) -> str:
    part = mail.get_body(("plain",))
    assert part is not None
    return " ".join(str(part.get_content()).split())  # lines unwrapped


def html_of(mail: EmailMessage) -> str:
    part = mail.get_body(("html",))
    assert part is not None
    return str(part.get_content())


def test_a_ticket_by_mail_keeps_its_subject_and_answers_in_the_senders_thread(
        listener: SmtpServer, relayed: World, smtp_sink: SmtpSink) -> None:
    theirs = make_msgid(domain="example.org")
    raw = make_mail(subject="Re: Download link broken for ABCD1234", message_id=theirs,
                    body="The download link of ABCD1234 says error 404.")
    code, _ = send(listener, raw, rcpt=f"support@{DOMAIN}")
    assert code == 250
    with relayed.runtime.sessions() as session:
        assert session.execute(select(Ticket.title)).scalar_one() == \
            "Download link broken for ABCD1234"
    mails = deliver(relayed, smtp_sink)
    mine, vendors = to(mails, CUSTOMER, "opened"), to(mails, VENDOR_CS, "opened")
    # the subject stays the fixed one vendors filter on; the customer's words are in the body
    assert str(mine["Subject"]).startswith("Ticket Opened - Tech Support Request [Ticket #")
    assert "Subject: Download link broken for ABCD1234" in text_of(mine)
    assert "Download link broken for ABCD1234" in html_of(vendors)
    # the first mail to the sender answers the sender's own mail
    assert mine["In-Reply-To"] == theirs
    assert theirs in str(mine["References"]).split()
    assert vendors["In-Reply-To"] is None
    # from the vendor's support for the customer; the marketplace's for the vendor
    assert (mine["From"].addresses[0].display_name, mine["From"].addresses[0].addr_spec) == (
        "acme Support", f"support@{DOMAIN}")
    assert vendors["From"].addresses[0].display_name == "Marketplace Support"


def test_a_second_mail_threads_under_the_first_not_the_sender(
        listener: SmtpServer, relayed: World, smtp_sink: SmtpSink) -> None:
    number = relayed.open()
    ours = to(deliver(relayed, smtp_sink), CUSTOMER)
    theirs = make_msgid(domain="example.org")
    raw = make_mail(subject="Re: ticket", message_id=theirs, body="Still broken, sorry.")
    code, _ = send(listener, raw, rcpt=relayed.reply_address(number, Role.CUSTOMER))
    assert code == 250
    reply = to(deliver(relayed, smtp_sink), CUSTOMER, "reply")
    # it answers the customer's reply, and keeps the ticket's thread in References
    assert reply["In-Reply-To"] == theirs
    assert str(ours["Message-ID"]) in str(reply["References"]).split()


def test_html_mail_becomes_text_without_markdown_and_links_stay_usable(
        listener: SmtpServer, relayed: World, smtp_sink: SmtpSink) -> None:
    number = relayed.open()
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = CUSTOMER, "x@example.org", "Anleitung"
    msg["Message-ID"] = make_msgid(domain="example.org")
    msg.set_content("<p>Die <b>Anleitung</b> fehlt: <a href=\"https://dl.example/guide?id=7&amp;l=de\">"
                    "Download</a> gibt <i>error 404</i>.</p>", subtype="html")
    code, _ = send(listener, msg.as_bytes(), rcpt=relayed.reply_address(number, Role.CUSTOMER))
    assert code == 250
    with relayed.runtime.sessions() as session:
        text = session.execute(select(Message.text).order_by(Message.id.desc())).scalars().first()
    assert text == ("Die Anleitung fehlt: Download (https://dl.example/guide?id=7&l=de) gibt "
                    "error 404.")
    mail = to(deliver(relayed, smtp_sink), VENDOR_CS, "reply")
    assert "Download (https://dl.example/guide?id=7&l=de)" in text_of(mail)
    assert '<a href="https://dl.example/guide?id=7&amp;l=de">' in html_of(mail)
    for markdown in ("**", "](", "_error"):
        assert markdown not in text_of(mail)


@pytest.mark.parametrize("attribution", [
    "On Mon, Nov 16, 2026 at 10:00 AM acme Support <support@tickets.localhost> wrote:",
    "Le lun. 16 nov. 2026 à 10:00, acme Support <support@tickets.localhost> a écrit :",
    "Am Mo., 16. Nov. 2026 um 10:00 Uhr schrieb acme Support <support@tickets.localhost>:",
    "Em seg., 16 de nov. de 2026 às 10:00, acme Support <support@tickets.localhost> escreveu:",
])
def test_a_reply_that_only_quotes_is_refused_as_empty(
        listener: SmtpServer, relayed: World, smtp_sink: SmtpSink, attribution: str) -> None:
    number = relayed.open()
    deliver(relayed, smtp_sink)
    smtp_sink.clear()
    body = f"{attribution}\n> Your ticket was opened.\n>\n> acme Support\n"
    code, text = send(listener, make_mail(subject="Re: ticket", body=body),
                      rcpt=relayed.reply_address(number, Role.CUSTOMER))
    assert (code, text) == (250, f"2.0.0 received; not applied to #{number} (a notice was "
                                 "sent)".encode())
    assert len(relayed.ticket(number)["messages"]) == 1  # type: ignore[arg-type]
    (notice,) = deliver(relayed, smtp_sink)
    assert notice["X-Ticket-Event"] == "notice"
    assert "reply needs some text" in text_of(notice)


def test_a_comment_from_an_unverified_sender_is_marked(
        listener: SmtpServer, relayed: World, smtp_sink: SmtpSink) -> None:
    number = relayed.open()
    deliver(relayed, smtp_sink)
    # matched by the subject token and the customer's From only: anyone could have sent it
    raw = make_mail(subject=f"Re: Ticket Opened [Ticket #{number}]", body="Any news?")
    code, _ = send(listener, raw, rcpt=f"support@{DOMAIN}")
    assert code == 250
    view = relayed.ticket(number)
    assert [m["verified"] for m in view["messages"]] == [True, False]  # type: ignore[index]
    mails = deliver(relayed, smtp_sink)
    vendor_text = text_of(to(mails, VENDOR_CS, "reply"))
    assert "Customer, " in vendor_text and "(sender not verified)" in vendor_text
    assert "(sender not verified)" in html_of(to(mails, VENDOR_CS, "reply"))
    with relayed.runtime.sessions() as session:
        assert session.execute(select(InboundMail.state)).scalar_one() == "applied"


def test_each_reader_is_told_the_commands_they_may_use(
        listener: SmtpServer, relayed: World, smtp_sink: SmtpSink) -> None:
    relayed.open()
    mails = deliver(relayed, smtp_sink)
    customer, vendor = text_of(to(mails, CUSTOMER)), text_of(to(mails, VENDOR_CS))
    assert "#close: close the ticket" in customer
    assert "#refund: turn this tech support request into a refund request" in customer
    assert "#escalate" not in customer and "#partial" not in customer
    assert "#escalate REASON: ask customer service to step in" in vendor
    assert "#techsupport" not in vendor and "#agree" not in vendor
    # the one-click way from tech support to a refund is offered to the customer
    assert "Change to a refund request: http" in customer
