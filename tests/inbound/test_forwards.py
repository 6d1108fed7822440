"""A customer's mail forwarded to support@ by the vendor or staff is filed under the customer
and the order, marked with who forwarded it, and never acts. Samples: tests/data/forward_*.eml
(Gmail and Outlook in four languages, Apple Mail, an attached message), sent through the
real SMTP listener."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from gateway.domain.facts import TicketType
from inbound.forwards import find_inline
from store.models import Message, Ticket
from tests.inbound.conftest import (
    CUSTOMER,
    DOMAIN,
    RECEIPT,
    STRANGER,
    VENDOR_CS,
    SmtpServer,
    World,
    send,
)

DATA = Path(__file__).resolve().parents[1] / "data"
SAMPLES = sorted(p.name for p in DATA.glob("forward_*.eml"))
OPENING = ("Hello, the download link", "Bonjour, le lien", "Hallo, der Download-Link",
           "Olá, o link")


def _sample(name: str, sender: str = VENDOR_CS) -> bytes:
    raw = (DATA / name).read_bytes()
    return raw.replace(b"Acme Help <help@acme.example>\n", f"<{sender}>\n".encode(), 1)


def _tickets(world: World) -> list[tuple[int, str, str, str]]:
    with world.runtime.sessions() as session:
        return [(t.number, t.type, t.status, t.order.receipt)
                for t in session.scalars(select(Ticket).order_by(Ticket.id))]


def _messages(world: World) -> list[tuple[str, str | None, str | None, str]]:
    with world.runtime.sessions() as session:
        return [(m.author_role, m.author_email, m.forwarded_by, m.text)
                for m in session.scalars(select(Message).order_by(Message.id))]


def test_every_sample_is_a_forward_of_the_customers_mail() -> None:
    assert len(SAMPLES) == 10


@pytest.mark.parametrize("name", SAMPLES)
def test_a_vendors_forward_is_filed_under_the_customer(smtp: SmtpServer, world: World,
                                                       name: str) -> None:
    code, answer = send(smtp, _sample(name), rcpt=f"support@{DOMAIN}", mail_from=VENDOR_CS)
    assert code == 250, answer
    [(number, kind, status, receipt)] = _tickets(world)
    assert (kind, status, receipt) == ("tech_support", "open", RECEIPT)  # #refund did nothing
    [(role, author, forwarded_by, text)] = _messages(world)
    assert (role, author, forwarded_by) == ("customer", CUSTOMER, VENDOR_CS)
    assert text.startswith(OPENING) and "#refund" in text  # the customer's words, kept as text
    assert "Forwarding this one" not in text and "Leite das" not in text


def test_a_forward_threads_to_the_customers_open_ticket(smtp: SmtpServer, world: World) -> None:
    number = world.open(TicketType.TECH_SUPPORT)
    code, _ = send(smtp, _sample("forward_gmail_fr.eml"), rcpt=f"support@{DOMAIN}",
                   mail_from=VENDOR_CS)
    assert code == 250
    assert [t[0] for t in _tickets(world)] == [number]
    assert _messages(world)[-1][:3] == ("customer", CUSTOMER, VENDOR_CS)


def test_staff_may_forward(smtp: SmtpServer, world: World) -> None:
    staff = world.runtime.settings.staff_email
    code, _ = send(smtp, _sample("forward_outlook_de.eml", staff), rcpt=f"support@{DOMAIN}",
                   mail_from=staff)
    assert code == 250
    assert _messages(world)[0][:3] == ("customer", CUSTOMER, staff)


def test_a_strangers_forward_is_refused_and_changes_nothing(smtp: SmtpServer,
                                                            world: World) -> None:
    code, _ = send(smtp, _sample("forward_apple_en.eml", STRANGER), rcpt=f"support@{DOMAIN}",
                   mail_from=STRANGER)
    assert code == 550
    assert _tickets(world) == [] and _messages(world) == []


def test_the_customers_own_forward_is_their_mail_not_marked(smtp: SmtpServer,
                                                           world: World) -> None:
    code, _ = send(smtp, _sample("forward_gmail_en.eml", CUSTOMER), rcpt=f"support@{DOMAIN}",
                   mail_from=CUSTOMER)
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
