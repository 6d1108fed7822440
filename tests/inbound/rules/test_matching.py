"""Matching rules and the trusted Authentication-Results check, pure."""

from __future__ import annotations

from dataclasses import replace

from gateway.domain.facts import Role
from inbound.parse import parse_mail
from inbound.pipeline import decide, is_verified, receipt_candidates
from inbound.rules.base import Kind, MailContext, OrderRef, TicketRef
from tests.inbound.conftest import make_mail

TICKET = TicketRef(1001, "open", "ann@example.org", frozenset({"v@acme.example"}))
ORDER = OrderRef("ABCD1234", "ann@example.org", frozenset({"v@acme.example"}))
CTX = MailContext(mail_domain="tickets.localhost", staff_email="staff@tickets.localhost",
                  recipient_kind="support", sender="ann@example.org", envelope_from="a@b.c")
MAIL = parse_mail(make_mail())


def test_reply_token_authorises_whatever_the_from() -> None:
    ctx = replace(CTX, recipient_kind="reply", sender="other@x.example", token_ticket=TICKET,
                  token_party=Role.CUSTOMER)
    rule, verdict = decide(MAIL, ctx)
    assert (rule, verdict.kind, verdict.may_act, verdict.role) == (
        "reply-token", Kind.THREAD, True, Role.CUSTOMER)


def test_subject_token_party_may_comment_not_act() -> None:
    ctx = replace(CTX, subject_number=1001, subject_ticket=TICKET)
    _, verdict = decide(MAIL, ctx)
    assert (verdict.kind, verdict.may_act) == (Kind.THREAD, False)
    _, verified = decide(MAIL, replace(ctx, verified=True))
    assert verified.may_act


def test_subject_token_stranger_and_unknown_number_look_alike() -> None:
    stranger = decide(MAIL, replace(CTX, sender="m@evil.example", subject_number=1001,
                                    subject_ticket=TICKET))[1]
    unknown = decide(MAIL, replace(CTX, subject_number=99))[1]
    assert stranger.smtp == unknown.smtp == "550 5.7.1"
    assert stranger.reason == unknown.reason


def test_legacy_vendor_address_makes_vendor_request() -> None:
    ctx = replace(CTX, recipient_kind="refunds", sender="v@acme.example", named_orders=(ORDER,))
    _, verdict = decide(MAIL, ctx)
    assert (verdict.kind, verdict.role, verdict.ticket_type) == (Kind.OPEN, Role.VENDOR, "refund")


def test_legacy_without_order() -> None:
    _, verdict = decide(MAIL, replace(CTX, recipient_kind="cancel"))
    assert verdict.smtp == "550 5.7.0"


def test_rejections_come_after_automated_checks() -> None:
    auto = parse_mail(make_mail(headers={"Auto-Submitted": "auto-replied"}))
    rule, verdict = decide(auto, replace(CTX, recipient_kind="unknown"))
    assert (rule, verdict.kind) == ("auto-submitted", Kind.IGNORE)


def test_trusted_authentication_results() -> None:
    sender = "ann@mail.example.org"
    ok = ["mx.ours.example 1; dkim=pass (good) header.d=example.org; spf=fail"]
    assert is_verified(ok, "mx.ours.example", sender)
    assert not is_verified(ok, "", sender)  # nothing trusted: nothing verified
    assert not is_verified(ok, "mx.other.example", sender)
    unaligned = ["mx.ours.example; dkim=pass header.d=evil.example"]
    assert not is_verified(unaligned, "mx.ours.example", sender)
    assert is_verified(["mx.ours.example; dmarc=pass header.from=mail.example.org"],
                       "mx.ours.example", sender)
    assert not is_verified(["mx.ours.example; dmarc=fail header.from=mail.example.org"],
                           "mx.ours.example", sender)
    # the receiving server's own verdict is the topmost one with its id; a pass below it
    # came with the mail (a forgery), and a foreign server's header above it changes nothing
    forged = ["mx.other.example; dmarc=pass header.from=mail.example.org",
              "mx.ours.example; dmarc=fail header.from=mail.example.org",
              "mx.ours.example; dmarc=pass header.from=mail.example.org"]
    assert not is_verified(forged, "mx.ours.example", sender)
    assert is_verified([forged[0], forged[2], forged[1]], "mx.ours.example", sender)


def test_receipt_candidates() -> None:
    mail = parse_mail(make_mail(subject="Refund abcd1234 please", body="Order ZZZZ9999. Thanks"))
    assert receipt_candidates(mail)[:2] == ["ABCD1234", "ZZZZ9999"]
