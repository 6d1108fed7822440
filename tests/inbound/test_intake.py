"""Intake decisions end to end through receive(), on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from gateway.domain.facts import Role, TicketType
from gateway.services import inbox
from inbound import intake, spool
from inbound.intake import receive
from inbound.rules.own_mail import LOOP_HEADER
from store.models import AddressState, Attachment, InboundMail, OutboxMail, Ticket
from tests.inbound.conftest import (
    CUSTOMER,
    DOMAIN,
    RECEIPT,
    STRANGER,
    SUB_RECEIPT,
    VENDOR,
    VENDOR_CS,
    World,
    make_mail,
    seed,
)
from ticketgw.testing.runtime import make_runtime

SUPPORT = f"support@{DOMAIN}"


def _outbox(world: World) -> list[tuple[str, str | None, str]]:
    with world.runtime.sessions() as session:
        rows = session.execute(select(OutboxMail).order_by(OutboxMail.id)).scalars().all()
        return [(r.event, r.notice_kind, r.recipient) for r in rows]


def _notices(world: World) -> list[tuple[str | None, str]]:
    return [(kind, to) for event, kind, to in _outbox(world) if event == "notice"]


def test_loop_header_matches_outbound() -> None:
    from outbound.message import LOOP_HEADER as OUTBOUND_LOOP_HEADER  # test-only check

    assert LOOP_HEADER == OUTBOUND_LOOP_HEADER


def test_vendor_commands_by_reply_token(world: World) -> None:
    number = world.open(TicketType.REFUND)
    raw = make_mail(sender=VENDOR_CS, body="#partial 12.50\n\nWe refund part of it.")
    outcome = receive(world.runtime, raw, envelope_from=VENDOR_CS,
                      recipient=world.reply_address(number, Role.VENDOR))
    assert (outcome.state, outcome.reply) == ("applied", f"250 2.0.0 threaded to #{number}")
    view = world.ticket(number)
    assert view["refund_kind"] == "amount" and view["refund_amount"] == "12.50"
    assert view["messages"][-1]["text"] == "We refund part of it."  # type: ignore[index]


def test_customer_close_by_token(world: World) -> None:
    number = world.open()
    raw = make_mail(body="#close\nSolved, thanks!\n\nOn Thu, Nov 19, 2026 Acme wrote:\n> old")
    outcome = receive(world.runtime, raw, envelope_from=CUSTOMER,
                      recipient=world.reply_address(number, Role.CUSTOMER))
    assert outcome.state == "applied"
    view = world.ticket(number)
    assert view["status"] == "closed" and view["close_reason"] == "by_customer"
    message = view["messages"][-1]  # type: ignore[index]
    assert message["text"] == "Solved, thanks!"


def test_subject_token_comment_added_commands_refused_once_a_day(world: World) -> None:
    number = world.open()
    for i in range(2):
        raw = make_mail(subject=f"Re: Ticket Reply - Tech Support Request [Ticket #{number}]",
                        body=f"#close\nattempt {i}")
        outcome = receive(world.runtime, raw, envelope_from=CUSTOMER, recipient=SUPPORT)
        assert outcome.reply.startswith("250 ") and "commands refused" in outcome.reply
    view = world.ticket(number)
    assert view["status"] == "open"
    assert [m["text"] for m in view["messages"]][1:] == ["attempt 0", "attempt 1"]  # type: ignore[index]
    assert _notices(world) == [("command_refused", CUSTOMER)]


def test_verified_sender_may_act_by_subject(tmp_path: Path, migrated_url: str) -> None:
    runtime = make_runtime(migrated_url, tmp_path, trusted_authserv_id="mx.tickets.localhost")
    try:
        world = seed(runtime)
        number = world.open()
        results = {"Authentication-Results":
                   "mx.tickets.localhost; dkim=pass header.d=example.org; dmarc=pass"}
        raw = make_mail(subject=f"Re: [Ticket #{number}]", body="#close\ndone", headers=results)
        assert receive(runtime, raw, envelope_from=CUSTOMER, recipient=SUPPORT).state == "applied"
        assert world.ticket(number)["status"] == "closed"
    finally:
        runtime.close()


def test_a_pass_below_the_trusted_servers_fail_is_a_forgery(tmp_path: Path,
                                                             migrated_url: str) -> None:
    runtime = make_runtime(migrated_url, tmp_path, trusted_authserv_id="mx.tickets.localhost")
    try:
        world = seed(runtime)
        number = world.open()
        forged = {"Authentication-Results":
                  "mx.tickets.localhost; dkim=pass header.d=example.org; dmarc=pass"}
        raw = make_mail(subject=f"Re: [Ticket #{number}]", body="#close\ndone", headers=forged)
        # what the trusted receiving server prepends on top of what the sender wrote
        raw = (b"Authentication-Results: mx.tickets.localhost; dmarc=fail "
               b"header.from=example.org\r\nReceived: from mail.evil.example by "
               b"mx.tickets.localhost\r\n" + raw)
        outcome = receive(runtime, raw, envelope_from=CUSTOMER, recipient=SUPPORT)
        assert "commands refused" in outcome.reply  # the comment lands, the close does not
        assert world.ticket(number)["status"] == "open"
    finally:
        runtime.close()


def test_foreign_authentication_results_are_ignored(world: World) -> None:
    number = world.open()
    results = {"Authentication-Results": "mx.evil.example; dmarc=pass header.from=example.org"}
    raw = make_mail(subject=f"[Ticket #{number}]", body="#close\nx", headers=results)
    receive(world.runtime, raw, envelope_from=CUSTOMER, recipient=SUPPORT)
    assert world.ticket(number)["status"] == "open"


def test_unknown_command_changes_nothing(world: World) -> None:
    number = world.open()
    raw = make_mail(body="#closee\nplease close")
    outcome = receive(world.runtime, raw, envelope_from=CUSTOMER,
                      recipient=world.reply_address(number, Role.CUSTOMER))
    assert outcome.state == "ignored" and outcome.reply.startswith("250 ")
    assert len(world.ticket(number)["messages"]) == 1  # type: ignore[arg-type]
    assert _notices(world) == [("command_refused", CUSTOMER)]


def test_forbidden_command_changes_nothing(world: World) -> None:
    number = world.open(TicketType.REFUND)
    raw = make_mail(body="#partial 10\nplease only refund 10")
    outcome = receive(world.runtime, raw, envelope_from=CUSTOMER,
                      recipient=world.reply_address(number, Role.CUSTOMER))
    assert outcome.state == "ignored"
    view = world.ticket(number)
    assert view["refund_kind"] == "full" and len(view["messages"]) == 1  # type: ignore[arg-type]
    assert _notices(world) == [("command_refused", CUSTOMER)]


@pytest.mark.parametrize("amount", ["1e27", "1e999999"])
def test_an_absurd_amount_by_mail_is_refused_not_retried(world: World, amount: str) -> None:
    number = world.open(TicketType.REFUND)
    raw = make_mail(sender=VENDOR, body=f"#partial {amount}\nthis much")
    outcome = receive(world.runtime, raw, envelope_from=VENDOR,
                      recipient=world.reply_address(number, Role.VENDOR))
    # a permanent answer with a notice, not 451 and a failed row retried for ever
    assert outcome.reply.startswith("250 ") and outcome.state != "failed"
    assert world.ticket(number)["refund_kind"] == "full"
    assert _notices(world) == [("command_refused", VENDOR)]


def test_vendor_reply_to_closed_ticket_gets_notice(world: World) -> None:
    number = world.open()
    receive(world.runtime, make_mail(body="#close\nbye"), envelope_from=CUSTOMER,
            recipient=world.reply_address(number, Role.CUSTOMER))
    outcome = receive(world.runtime, make_mail(sender=VENDOR, body="one more thing"),
                      envelope_from=VENDOR, recipient=world.reply_address(number, Role.VENDOR))
    assert outcome.state == "ignored"
    assert ("vendor_reply_closed", VENDOR) in _notices(world)


def test_customer_reply_to_closed_ticket_opens_follow_up(world: World) -> None:
    number = world.open()
    address = world.reply_address(number, Role.CUSTOMER)
    receive(world.runtime, make_mail(body="#close\nbye"), envelope_from=CUSTOMER, recipient=address)
    outcome = receive(world.runtime, make_mail(body="It broke again"), envelope_from=CUSTOMER,
                      recipient=address)
    assert outcome.state == "applied" and outcome.ticket_number not in (None, number)


def test_references_thread_a_party_and_refuse_a_stranger(world: World) -> None:
    number = world.open()
    with world.runtime.sessions.begin() as session:
        row = session.execute(select(OutboxMail).where(OutboxMail.party == "customer")).scalars()\
            .first()
        assert row is not None
        row.message_id = f"<outbox-{row.id}.ticketgw@{DOMAIN}>"
        ours = row.message_id
    headers = {"In-Reply-To": ours, "References": ours}
    ok = receive(world.runtime, make_mail(subject="Re: hi", body="Thanks", headers=headers),
                 envelope_from=CUSTOMER, recipient=SUPPORT)
    assert ok.reply == f"250 2.0.0 threaded to #{number}"
    bad = receive(world.runtime, make_mail(sender=STRANGER, subject="Re: hi", body="x",
                                           headers=headers),
                  envelope_from=STRANGER, recipient=SUPPORT)
    assert bad.reply.startswith("550 5.7.1")


def test_a_guessed_message_id_of_the_old_form_threads_nothing(world: World) -> None:
    number = world.open()
    with world.runtime.sessions() as session:
        first = session.execute(select(OutboxMail.id).order_by(OutboxMail.id)).scalars().first()
    # what our Message-IDs were: `<outbox-N.ticketgw@DOMAIN>`, guessable from a row number
    guessed = f"<outbox-{first}.ticketgw@{DOMAIN}>"
    raw = make_mail(subject="Re: hello", body="#close\nbye",
                    headers={"In-Reply-To": guessed, "References": guessed})
    outcome = receive(world.runtime, raw, envelope_from=CUSTOMER, recipient=SUPPORT)
    assert "by References" not in outcome.reason, outcome.reason
    assert world.ticket(number)["status"] == "open"


def test_legacy_refund_by_customer_unverified_awaits_confirmation(world: World) -> None:
    raw = make_mail(subject="refund", body=f"Please refund order {RECEIPT.lower()}.")
    outcome = receive(world.runtime, raw, envelope_from=CUSTOMER, recipient=f"refunds@{DOMAIN}")
    assert outcome.state == "applied", outcome
    view = world.ticket(outcome.ticket_number or 0)
    assert view["awaiting_confirmation"] is True and view["process_at"] is None
    assert view["created_by"] == "customer"
    assert _outbox(world) == [("notice", "confirm_request", CUSTOMER)]


def test_legacy_refund_from_sender_single_order(world: World) -> None:
    outcome = receive(world.runtime, make_mail(subject="money back", body="please"),
                      envelope_from=CUSTOMER, recipient=f"refunds@{DOMAIN}")
    assert outcome.state == "applied"
    assert world.ticket(outcome.ticket_number or 0)["receipt"] == RECEIPT


def test_legacy_cancel_without_subscription_is_refused(world: World) -> None:
    raw = make_mail(subject=f"cancel {RECEIPT}", body="stop it")
    outcome = receive(world.runtime, raw, envelope_from=CUSTOMER, recipient=f"cancel@{DOMAIN}")
    assert outcome.reply.startswith("550 5.7.0 this order is not a subscription")
    with world.runtime.sessions() as session:
        assert session.execute(select(Ticket)).first() is None
        row = session.execute(select(InboundMail)).scalar_one()
        assert row.state == "rejected" and "subscription" in row.reason


def test_legacy_request_from_stranger_naming_receipt(world: World) -> None:
    raw = make_mail(sender=STRANGER, subject=f"cancel {SUB_RECEIPT}")
    outcome = receive(world.runtime, raw, envelope_from=STRANGER, recipient=f"cancel@{DOMAIN}")
    assert outcome.reply.startswith("550 5.7.1 write from the address used for the order")


def test_support_new_ticket_then_reply_to_the_open_one(world: World) -> None:
    first = receive(world.runtime, make_mail(subject=f"Problem with {RECEIPT}"),
                    envelope_from=CUSTOMER, recipient=SUPPORT)
    assert first.reply.startswith("250 2.0.0 opened #")
    view = world.ticket(first.ticket_number or 0)
    assert view["type"] == "tech_support" and view["created_by"] == "customer"
    second = receive(world.runtime, make_mail(subject="still", body="more details"),
                     envelope_from=CUSTOMER, recipient=SUPPORT)
    assert second.reply == f"250 2.0.0 threaded to #{first.ticket_number}"


def test_support_from_non_party_naming_receipt(world: World) -> None:
    outcome = receive(world.runtime, make_mail(sender=STRANGER, subject=f"help {RECEIPT}"),
                      envelope_from=STRANGER, recipient=SUPPORT)
    assert outcome.reply == ("550 5.7.1 write from the address used for the order, or use the "
                             "receipt page (the link is in your order receipt mail)")


def test_list_mail_with_reply_token_is_a_reply(world: World) -> None:
    number = world.open()
    headers = {"List-Id": "Acme support <support.acme.example>", "Precedence": "list"}
    raw = make_mail(sender=VENDOR_CS, body="We are on it.", headers=headers)
    outcome = receive(world.runtime, raw, envelope_from=VENDOR_CS,
                      recipient=world.reply_address(number, Role.VENDOR))
    assert outcome.state == "applied"
    ignored = receive(world.runtime, make_mail(subject=f"news {RECEIPT}", headers=headers),
                      envelope_from=CUSTOMER, recipient=SUPPORT)
    assert ignored.state == "ignored"


def test_own_mail_and_loops_are_ignored(world: World) -> None:
    number = world.open()
    address = world.reply_address(number, Role.CUSTOMER)
    own = make_mail(headers={LOOP_HEADER: DOMAIN})
    assert receive(world.runtime, own, envelope_from=CUSTOMER, recipient=address).state == \
        "ignored"
    looped = b"".join(b"Received: from a by b; Thu, 19 Nov 2026 09:00:00 +0000\r\n"
                      for _ in range(100)) + make_mail()
    outcome = receive(world.runtime, looped, envelope_from=CUSTOMER, recipient=address)
    assert outcome.state == "ignored" and "loop" in outcome.reason


def test_a_report_tied_to_none_of_our_mail_is_recorded_and_marks_nobody(world: World) -> None:
    raw = Path("tests/data/bounce_delivery_status.eml").read_bytes()
    outcome = receive(world.runtime, raw, envelope_from="", recipient=SUPPORT)
    assert outcome.state == "ignored"
    assert outcome.reason.startswith("delivery report for gone.user@example.org, "
                                     "second@example.net not tied to a mail of ours")
    with world.runtime.sessions() as session:
        states = session.execute(select(AddressState)).scalars().all()
    assert not [s for s in states if s.bouncing_since or s.suppressed_since]
    # tests/inbound/test_bounces.py: reports tied to our mail, over SMTP


def test_attachments_are_stored(world: World) -> None:
    number = world.open()
    raw = Path("tests/data/attachment_en.eml").read_bytes()
    receive(world.runtime, raw, envelope_from=CUSTOMER,
            recipient=world.reply_address(number, Role.CUSTOMER))
    with world.runtime.sessions() as session:
        assert session.execute(select(Attachment)).scalars().all()


def test_database_down_spools_to_disk_then_replays(world: World,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    number = world.open()
    runtime = world.runtime
    real = runtime.sessions

    class Down:
        def begin(self) -> None:
            raise OperationalError("connect", {}, Exception("connection refused"))

        def __call__(self) -> None:
            raise OperationalError("connect", {}, Exception("connection refused"))

    monkeypatch.setattr(runtime, "sessions", Down())
    raw = make_mail(body="sent while the database was down")
    outcome = receive(runtime, raw, envelope_from=CUSTOMER,
                      recipient=world.reply_address(number, Role.CUSTOMER))
    assert outcome.state == "failed" and outcome.reply.startswith("451 4.3.0")
    spooled = list(spool.spool_dir(runtime).glob("*.eml"))
    assert len(spooled) == 1
    assert json.loads(spooled[0].with_suffix(".json").read_text())["recipient"].startswith("reply+")
    monkeypatch.setattr(runtime, "sessions", real)
    assert [o.state for o in intake.replay(runtime)] == ["applied"]
    assert not list(spool.spool_dir(runtime).glob("*.eml"))
    assert world.ticket(number)["messages"][-1]["text"] == "sent while the database was down"  # type: ignore[index]


def test_why_reports_the_decision(world: World) -> None:
    raw = make_mail(sender=STRANGER, subject="[Ticket #77]", message_id="<why-1@example.org>")
    receive(world.runtime, raw, envelope_from=STRANGER, recipient=SUPPORT)
    with world.runtime.sessions() as session:
        rows = inbox.why(session, "why-1@example.org")
    assert [(r["state"], r["decision"]) for r in rows] == [("rejected", "rejected_not_party")]
