"""Delivery reports count only when tied to our mail: over real SMTP, on SQLite and PostgreSQL.

Our mail goes to a real SMTP sink (the relay) with its signed return address as the envelope
sender; reports come back through the real listener, as a remote server would send them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from email.utils import make_msgid
from pathlib import Path

import pytest
from sqlalchemy import select

from gateway.domain.facts import Action, Role, TicketType
from gateway.services import inbox, tickets
from gateway.services.context import Actor
from outbound.deliver import Deliverer
from store.models import AddressState, InboundMail, OutboxMail
from tests.inbound.conftest import (
    CUSTOMER,
    DOMAIN,
    STRANGER,
    VENDOR_CS,
    SmtpServer,
    World,
    make_mail,
    seed,
    send,
)
from ticketgw.testing.runtime import make_runtime
from ticketgw.testing.smtp_sink import ReceivedMail, SmtpSink

SUPPORT = f"support@{DOMAIN}"


def delivery_report(*recipients: str, status: str = "5.1.1", returned_id: str | None = None,
                    sender: str = "MAILER-DAEMON@mx.example.net",
                    message_id: str | None = None,
                    statuses: dict[str, str] | None = None) -> bytes:
    """A delivery status notification (RFC 3464) as a remote server writes one; `statuses`
    gives a recipient its own status (the others get `status`)."""
    lines = [
        f"From: Mail Delivery System <{sender}>",
        f"To: {SUPPORT}",
        "Subject: Undelivered Mail Returned to Sender",
        f"Message-ID: {message_id or make_msgid(domain='mx.example.net')}",
        "MIME-Version: 1.0",
        "Auto-Submitted: auto-replied",
        'Content-Type: multipart/report; report-type=delivery-status; boundary="rep"',
        "",
        "--rep",
        "Content-Type: text/plain",
        "",
        "Your message could not be delivered.",
        "--rep",
        "Content-Type: message/delivery-status",
        "",
        "Reporting-MTA: dns; mx.example.net",
        "",
    ]
    for address in recipients:
        own = (statuses or {}).get(address, status)
        action = "failed" if own.startswith("5.") else "delayed"
        lines += [f"Final-Recipient: rfc822; {address}", f"Action: {action}", f"Status: {own}",
                  ""]
    lines += ["--rep", "Content-Type: text/rfc822-headers", "", f"From: {SUPPORT}",
              "Subject: Ticket Opened - Tech Support Request [Ticket #1]"]
    if returned_id is not None:
        lines.append(f"Message-ID: {returned_id}")
    lines += ["", "--rep--", ""]
    return "\r\n".join(lines).encode()


@dataclass
class Story:
    world: World
    smtp: SmtpServer
    sink: SmtpSink
    deliverer: Deliverer

    def deliver(self) -> dict[str, str]:
        """Deliver every pending outbox row now: {recipient: outcome} of the newest ones."""
        with self.world.runtime.sessions() as session:
            rows = session.execute(select(OutboxMail.id, OutboxMail.recipient)
                                   .where(OutboxMail.state == "pending")
                                   .order_by(OutboxMail.id)).all()
        return {recipient: self.deliverer.deliver(outbox_id) for outbox_id, recipient in rows}

    def mail_to(self, address: str) -> ReceivedMail:
        return [m for m in self.sink.messages if m.rcpt_tos == (address,)][-1]

    def address_state(self, address: str) -> tuple[bool, bool]:
        """(bouncing, suppressed) of an address."""
        with self.world.runtime.sessions() as session:
            row = session.get(AddressState, address)
            if row is None:
                return False, False
            return row.bouncing_since is not None, row.suppressed_since is not None

    def decisions(self) -> list[tuple[str, str]]:
        with self.world.runtime.sessions() as session:
            return [(r.decision, r.reason) for r in session.execute(
                select(InboundMail).order_by(InboundMail.id)).scalars()]

    def vendor_replies(self, number: int) -> None:
        runtime = self.world.runtime
        with runtime.sessions.begin() as session:
            tickets.act(session, runtime.context(), number, Action.REPLY,
                        Actor(Role.VENDOR, email=VENDOR_CS, source="web"), comment="Try again")


@pytest.fixture
def story(migrated_url: str, tmp_path: Path, smtp_sink: SmtpSink) -> Iterator[Story]:
    runtime = make_runtime(migrated_url, tmp_path, smtp_relay=smtp_sink.address)
    world = seed(runtime)
    server = SmtpServer(runtime)
    deliverer = Deliverer(runtime)
    try:
        yield Story(world, server, smtp_sink, deliverer)
    finally:
        server.stop()
        deliverer.close()
        runtime.close()


def test_a_forged_report_naming_a_customer_suppresses_nobody(story: Story) -> None:
    # a stranger's report, as if our mail to the customer and the vendor had failed for
    # good, quoting what our Message-IDs used to look like
    forged = delivery_report(CUSTOMER, VENDOR_CS, sender=STRANGER, message_id="<forged@evil>",
                             returned_id=f"<outbox-1.ticketgw@{DOMAIN}>")
    code, text = send(story.smtp, forged, rcpt=SUPPORT, mail_from="")
    assert (code, text) == (250, b"2.0.0 delivery report recorded")
    with story.world.runtime.sessions() as session:
        (why,) = inbox.why(session, "<forged@evil>")  # what `ticketgw mail why` prints
    assert why["decision"] == "ignored_untied_bounce" and "not tied" in why["reason"]
    assert story.address_state(CUSTOMER) == (False, False)
    assert story.address_state(VENDOR_CS) == (False, False)
    number = story.world.open()
    assert story.deliver() == {CUSTOMER: "sent", VENDOR_CS: "sent"}
    assert f"[Ticket #{number}]" in story.mail_to(CUSTOMER).subject


def test_a_bounce_to_our_return_path_suppresses_that_recipient(story: Story) -> None:
    number = story.world.open()
    assert story.deliver() == {CUSTOMER: "sent", VENDOR_CS: "sent"}
    return_path = story.mail_to(CUSTOMER).mail_from
    # the report also names the vendor: only the mail's own recipient counts
    report = delivery_report(CUSTOMER, VENDOR_CS)
    client = story.smtp.client()
    try:
        assert client.mail("")[0] == 250
        assert client.rcpt(return_path)[0] == 250
        assert client.data(report) == (250, b"2.0.0 delivery report recorded")
    finally:
        client.close()
    ((decision, reason),) = story.decisions()
    assert decision == "ignored_bounce" and "by return address" in reason
    assert story.address_state(CUSTOMER) == (True, True)
    assert story.address_state(VENDOR_CS) == (False, False)
    story.vendor_replies(number)
    assert story.deliver() == {CUSTOMER: "failed", VENDOR_CS: "sent"}


def test_a_report_quoting_our_message_id_suppresses_only_its_recipient(story: Story) -> None:
    story.world.open()
    story.deliver()
    ours = story.mail_to(CUSTOMER).message["Message-ID"]
    report = delivery_report(CUSTOMER, VENDOR_CS, returned_id=ours)
    assert send(story.smtp, report, rcpt=SUPPORT, mail_from="")[0] == 250
    ((decision, reason),) = story.decisions()
    assert decision == "ignored_bounce" and "by Message-ID" in reason
    assert story.address_state(CUSTOMER) == (True, True)
    # the customer's Message-ID was never sent to the vendor
    assert story.address_state(VENDOR_CS) == (False, False)


def test_a_soft_bounce_marks_bouncing_without_suppressing(story: Story) -> None:
    story.world.open()
    story.deliver()
    return_path = story.mail_to(CUSTOMER).mail_from
    assert return_path.startswith("bounce+")
    report = delivery_report(CUSTOMER, status="4.2.2")  # mailbox full: try again later
    assert send(story.smtp, report, rcpt=return_path, mail_from="")[0] == 250
    assert story.address_state(CUSTOMER) == (True, False)


def test_a_report_suppresses_only_the_recipient_whose_own_status_is_permanent(
        story: Story) -> None:
    """One report, two recipients: the customer's mailbox is full (4.2.2, try later), another
    address does not exist (5.1.1). The customer is only marked bouncing."""
    story.world.open()
    story.deliver()
    ours = story.mail_to(CUSTOMER).message["Message-ID"]
    report = delivery_report(CUSTOMER, "gone@example.net", returned_id=ours,
                             statuses={CUSTOMER: "4.2.2", "gone@example.net": "5.1.1"})
    assert send(story.smtp, report, rcpt=SUPPORT, mail_from="")[0] == 250
    assert story.address_state(CUSTOMER) == (True, False)
    ((_, reason),) = story.decisions()
    assert "suppressed" not in reason


def test_a_return_path_report_naming_an_expanded_alias_suppresses_the_recipient(
        story: Story) -> None:
    """The customer's address forwards to another mailbox that no longer exists: the report
    names only that one, and it came back to the mail's own return address."""
    story.world.open()
    story.deliver()
    return_path = story.mail_to(CUSTOMER).mail_from
    report = delivery_report("ann.real@mailhost.example", status="5.1.1")
    assert send(story.smtp, report, rcpt=return_path, mail_from="")[0] == 250
    assert story.address_state(CUSTOMER) == (True, True)
    mixed = delivery_report("a@mailhost.example", "b@mailhost.example",
                            statuses={"a@mailhost.example": "4.4.1"})
    story.world.open(TicketType.REFUND)
    story.deliver()
    newer = story.mail_to(VENDOR_CS).mail_from  # the vendor's mail: its own return address
    assert send(story.smtp, mixed, rcpt=newer, mail_from="")[0] == 250
    assert story.address_state(VENDOR_CS) == (True, False)  # not every named one failed


def test_a_tampered_return_address_is_refused_at_rcpt(story: Story) -> None:
    story.world.open()
    story.deliver()
    genuine = story.mail_to(CUSTOMER).mail_from
    local, _, domain = genuine.partition("@")
    token = local.removeprefix("bounce+")
    flipped = token[:10] + ("a" if token[10] != "a" else "b") + token[11:]
    runtime = story.world.runtime
    refused = [
        f"bounce+{flipped}@{domain}",  # one character changed
        f"bounce+{token[:-1]}@{domain}",  # cut short
        f"bounce+abcdefgh@{domain}",  # never signed
        f"bounce+{runtime.tokens.reply_token(1, Role.CUSTOMER)}@{domain}",  # another purpose
    ]
    client = story.smtp.client()
    try:
        assert client.mail("")[0] == 250
        for address in refused:
            assert client.rcpt(address) == (
                550, b"5.1.1 no such return address here: it is not one of our signed ones")
        assert client.rcpt(genuine)[0] == 250
    finally:
        client.close()
    # a return token is no reply address either
    code, _ = send(story.smtp, make_mail(), rcpt=f"reply+{token}@{domain}")
    assert code == 550


def test_other_mail_to_a_return_path_changes_nothing(story: Story) -> None:
    story.world.open()
    story.deliver()
    return_path = story.mail_to(CUSTOMER).mail_from
    away = make_mail(subject="Out of office", headers={"Auto-Submitted": "auto-replied"})
    assert send(story.smtp, away, rcpt=return_path, mail_from=CUSTOMER)[0] == 250
    code, _ = send(story.smtp, make_mail(body="hello?"), rcpt=return_path)
    assert code == 550  # a person writing to it is told to use the support address
    assert story.address_state(CUSTOMER) == (False, False)
    assert [d for d, _ in story.decisions()] == ["ignored_auto_reply", "rejected_recipient"]
