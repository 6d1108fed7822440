"""The automated-mail rules, pure: each mail and context in, a verdict out."""

from __future__ import annotations

import pytest

from gateway.domain.facts import Role
from inbound.parse import parse_mail
from inbound.rules import auto_submitted, mailing_list, null_sender, out_of_office, own_mail
from inbound.rules.base import Kind, MailContext, TicketRef
from tests.inbound.conftest import make_mail

CTX = MailContext(mail_domain="tickets.localhost", staff_email="staff@tickets.localhost",
                  recipient_kind="support", sender="ann@example.org", envelope_from="a@b.c")
TICKET = TicketRef(1001, "open", "ann@example.org", frozenset({"v@x.example"}))


@pytest.mark.parametrize("subject", [
    "Out of Office: your ticket", "Automatic reply: Ticket Reply [Ticket #3]",
    "Réponse automatique : Ticket", "Absence du bureau", "Abwesenheitsnotiz: Ticket",
    "Automatische Antwort: Ticket Reply", "Resposta automática: Ticket",
    "Ausência temporária", "RE: Fora do escritório", "AW: Außer Haus",
])
def test_out_of_office_subjects(subject: str) -> None:
    mail = parse_mail(make_mail(subject=subject))
    assert out_of_office.check(mail, CTX).kind is Kind.IGNORE


@pytest.mark.parametrize("subject", [
    "Absence of the download link", "Férias cancelled my order?", "Automatic download fails",
    "Re: [Ticket #3] abwesend seit Montag",
])
def test_ordinary_subjects_pass(subject: str) -> None:
    mail = parse_mail(make_mail(subject=subject))
    assert out_of_office.check(mail, CTX).kind is Kind.CONTINUE


@pytest.mark.parametrize("headers,kind", [
    ({"Auto-Submitted": "auto-replied"}, Kind.IGNORE),
    ({"Auto-Submitted": "auto-generated; owner-email=x@y"}, Kind.IGNORE),
    ({"Auto-Submitted": "no"}, Kind.CONTINUE),
    ({"X-Autoreply": "yes"}, Kind.IGNORE),
    ({"X-Auto-Response-Suppress": "All"}, Kind.IGNORE),
    ({}, Kind.CONTINUE),
])
def test_auto_submitted(headers: dict[str, str], kind: Kind) -> None:
    assert auto_submitted.check(parse_mail(make_mail(headers=headers)), CTX).kind is kind


def test_null_sender_and_mailer_daemon() -> None:
    mail = parse_mail(make_mail())
    assert null_sender.check(mail, CTX).kind is Kind.CONTINUE
    assert null_sender.check(mail, MailContext(**{**CTX.__dict__, "envelope_from": ""})).kind \
        is Kind.IGNORE
    daemon = MailContext(**{**CTX.__dict__, "sender": "MAILER-DAEMON@mx.example".lower()})
    assert null_sender.check(mail, daemon).kind is Kind.IGNORE


def test_list_mail_needs_a_reply_token_to_pass() -> None:
    mail = parse_mail(make_mail(headers={"List-Id": "<group.example>"}))
    assert mailing_list.check(mail, CTX).kind is Kind.IGNORE
    with_token = MailContext(**{**CTX.__dict__, "token_ticket": TICKET,
                                "token_party": Role.VENDOR})
    assert mailing_list.check(mail, with_token).kind is Kind.CONTINUE
    bulk = parse_mail(make_mail(headers={"Precedence": "bulk"}))
    assert mailing_list.check(bulk, with_token).kind is Kind.IGNORE


def test_own_mail() -> None:
    assert own_mail.check(parse_mail(make_mail(headers={own_mail.LOOP_HEADER: "x"})),
                          CTX).kind is Kind.IGNORE
    assert own_mail.check(parse_mail(make_mail()), CTX).kind is Kind.CONTINUE
