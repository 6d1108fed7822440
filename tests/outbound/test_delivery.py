"""Delivery: retries while the relay is down, parked failures, caps, suppression, Maildir."""

from __future__ import annotations

import mailbox
from collections.abc import Callable
from datetime import timedelta
from email import policy
from email.parser import BytesParser
from pathlib import Path

import pytest
from sqlalchemy import select, update

from gateway.domain.facts import Action, Role
from gateway.services import tickets
from gateway.services.context import Actor, MailOrigin, StoredAttachment
from gateway.services.runtime import Runtime
from outbound.deliver import Deliverer, RetryPolicy, retry_failed
from outbound.sweeps import dispatch_due, sweep_outbox
from store.models import AddressState, OutboxMail
from tests.support import wait_until
from ticketgw.broker import build_broker, start_worker
from ticketgw.testing.runtime import make_runtime
from ticketgw.testing.smtp_sink import SmtpSink
from ticketgw.testing.story import (
    CUSTOMER,
    RECEIPT,
    VENDOR,
    open_refund,
    outbox,
    seed_order,
    states,
    text_part,
)


def advance(runtime: Runtime, **delta: float) -> None:
    runtime.clock.advance(timedelta(**delta))  # type: ignore[attr-defined]


def sweep_now(runtime: Runtime, deliverer: Deliverer) -> int:
    """One outbox sweep whose dispatch delivers in this thread."""
    return sweep_outbox(runtime.sessions, runtime.clock,
                        lambda oid, lease: deliverer.deliver(oid, lease) and None)


def reply(runtime: Runtime, number: int, text: str, role: Role = Role.CUSTOMER,
          attachments: list[StoredAttachment] | None = None) -> None:
    email = CUSTOMER if role is Role.CUSTOMER else VENDOR
    with runtime.sessions.begin() as session:
        tickets.act(session, runtime.context(), number, Action.REPLY,
                    Actor(role, email=email, source="email"), comment=text,
                    origin=MailOrigin(attachments=tuple(attachments or ())))


def test_relay_down_then_up_sends_each_mail_exactly_once(relay_runtime: Runtime,
                                                         smtp_sink: SmtpSink) -> None:
    seed_order(relay_runtime)
    running = start_worker(relay_runtime, build_broker(relay_runtime.settings), scheduler=True,
                           outbox_period=0.1)
    try:
        smtp_sink.go_down()
        open_refund(relay_runtime)
        wait_until(lambda: all(r.attempts >= 1 for r in outbox(relay_runtime)), timeout=10,
                   message="first attempts")
        first = outbox(relay_runtime)
        assert all(r.state == "pending" and "451" in (r.last_error or "") for r in first)
        raws = {r.id: r.raw for r in first}
        advance(relay_runtime, minutes=2)  # past the first back-off: tried again
        wait_until(lambda: all(r.attempts >= 2 for r in outbox(relay_runtime)), timeout=10,
                   message="second attempts")
        assert smtp_sink.messages == []
        smtp_sink.go_up()
        advance(relay_runtime, minutes=5)
        wait_until(lambda: set(states(relay_runtime).values()) == {"sent"}, timeout=10,
                   message="sent once the relay is back")
    finally:
        running.stop()
    mails = smtp_sink.messages
    assert sorted(m.rcpt_tos[0] for m in mails) == sorted([CUSTOMER, VENDOR])
    for row in outbox(relay_runtime):
        assert row.raw == raws[row.id]  # the very bytes rendered on the first attempt
        assert row.attempts == 3 and row.last_error is None
        sent = next(m for m in mails if m.rcpt_tos[0] == row.recipient)
        assert sent.raw.replace(b"\r\n", b"\n") == row.raw.replace(b"\r\n", b"\n")


def test_retry_limit_fails_then_outbox_retry_requeues(relay_runtime: Runtime,
                                                      smtp_sink: SmtpSink) -> None:
    seed_order(relay_runtime)
    open_refund(relay_runtime)
    deliverer = Deliverer(relay_runtime, retry=RetryPolicy(max_attempts=2))
    smtp_sink.go_down(stage="RCPT")
    assert sweep_now(relay_runtime, deliverer) == 2
    advance(relay_runtime, minutes=1)
    assert sweep_now(relay_runtime, deliverer) == 2
    rows = outbox(relay_runtime)
    assert [r.state for r in rows] == ["failed", "failed"]
    assert all(r.attempts == 2 and "451" in (r.last_error or "") for r in rows)
    smtp_sink.go_up()
    assert sweep_now(relay_runtime, deliverer) == 0  # failed mail waits for the operator
    assert retry_failed(relay_runtime) == 2
    assert [(r.state, r.attempts) for r in outbox(relay_runtime)] == [("pending", 0)] * 2
    assert sweep_now(relay_runtime, deliverer) == 2
    assert set(states(relay_runtime).values()) == {"sent"}
    assert len(smtp_sink.messages) == 2


def test_permanent_refusal_fails_at_once(relay_runtime: Runtime, smtp_sink: SmtpSink) -> None:
    seed_order(relay_runtime)
    open_refund(relay_runtime)
    smtp_sink.go_down(stage="RCPT", reply="550 5.1.1 No such user")
    sweep_now(relay_runtime, Deliverer(relay_runtime))
    rows = outbox(relay_runtime)
    assert [(r.state, r.attempts) for r in rows] == [("failed", 1)] * 2
    assert "550" in (rows[0].last_error or "")


def test_template_error_parks_that_row_while_other_mail_flows(relay_runtime: Runtime,
                                                              smtp_sink: SmtpSink) -> None:
    seed_order(relay_runtime)
    number = open_refund(relay_runtime)
    with relay_runtime.sessions.begin() as session:
        first = session.execute(select(OutboxMail).order_by(OutboxMail.id)).scalars().first()
        assert first is not None
        bad = OutboxMail(ticket_id=first.ticket_id, order_id=first.order_id, event="no_such_event",
                         party="customer", recipient=CUSTOMER, locale="en", state="pending",
                         attempts=0, created_at=first.created_at,
                         next_attempt_at=first.created_at, upto_message_id=None)
        session.add(bad)
        session.flush()
        bad_id = bad.id
    running = start_worker(relay_runtime, build_broker(relay_runtime.settings), scheduler=True,
                           outbox_period=0.1)
    try:
        wait_until(lambda: set(states(relay_runtime).values()) == {"sent", "failed"}
                   and "pending" not in states(relay_runtime).values(), timeout=10)
        reply(relay_runtime, number, "Any news?")
        wait_until(lambda: len(smtp_sink.messages) == 4, timeout=10, message="later mail flows")
    finally:
        running.stop()
    parked = next(r for r in outbox(relay_runtime) if r.id == bad_id)
    assert parked.state == "failed" and parked.raw is None
    assert (parked.last_error or "").startswith("rendering failed: ValueError")
    assert [r.state for r in outbox(relay_runtime) if r.id != bad_id] == ["sent"] * 4


def test_cap_defers_and_sends_one_digest(make_relay_runtime: Callable[..., Runtime],
                                         smtp_sink: SmtpSink) -> None:
    runtime = make_relay_runtime(notify_cap="2/600")
    seed_order(runtime, vendor_locale="en")
    deliverer = Deliverer(runtime)
    number = open_refund(runtime)
    sweep_now(runtime, deliverer)
    for i in range(4):
        advance(runtime, seconds=10)
        reply(runtime, number, f"Reply number {i}")
        sweep_now(runtime, deliverer)
    to_vendor = [r for r in outbox(runtime) if r.recipient == VENDOR]
    assert [r.state for r in to_vendor] == ["sent", "sent", "deferred", "deferred", "deferred"]
    release = to_vendor[0].sent_at + timedelta(seconds=600)  # type: ignore[operator]
    assert {r.next_attempt_at for r in to_vendor[2:]} == {release}
    advance(runtime, seconds=300)
    sweep_now(runtime, deliverer)
    assert len([m for m in smtp_sink.messages if m.rcpt_tos == (VENDOR,)]) == 2  # still held
    runtime.clock.set(release)  # type: ignore[attr-defined]
    sweep_now(runtime, deliverer)
    vendor_mails = [m for m in smtp_sink.messages if m.rcpt_tos == (VENDOR,)]
    assert len(vendor_mails) == 3
    digest = vendor_mails[-1]
    text = text_part(digest.message)
    assert "3 updates on this ticket were held back" in text
    assert text.count(f"Ticket Reply - Refund Request [Ticket #{number}]") == 3
    assert "Reply number 3" in text and "Reply number 1" in text
    to_vendor = [r for r in outbox(runtime) if r.recipient == VENDOR]
    assert [r.state for r in to_vendor] == ["sent"] * 5
    assert {r.message_id for r in to_vendor[2:]} == {digest.message["Message-ID"]}


def test_suppressed_address_is_not_mailed(relay_runtime: Runtime, smtp_sink: SmtpSink) -> None:
    seed_order(relay_runtime)
    with relay_runtime.sessions.begin() as session:
        session.add(AddressState(address=CUSTOMER, rate_count=0,
                                 suppressed_since=relay_runtime.clock.now()))
    open_refund(relay_runtime)
    sweep_now(relay_runtime, Deliverer(relay_runtime))
    rows = {r.recipient: r for r in outbox(relay_runtime)}
    assert rows[CUSTOMER].state == "failed"
    assert "suppressed" in (rows[CUSTOMER].last_error or "")
    assert rows[VENDOR].state == "sent"
    assert [m.rcpt_tos for m in smtp_sink.messages] == [(VENDOR,)]


@pytest.mark.parametrize(("stored", "written"), [
    ("ann@example.org", "ann@example.org"),
    ("ann@example.org", "Ann@Example.ORG"),
    ("ann@example.org", " ann@example.org"),
    ("Ann@Example.ORG", "Ann@Example.ORG"),  # kept as written before addresses were folded
])
def test_suppression_is_found_however_the_recipient_is_written(
        relay_runtime: Runtime, smtp_sink: SmtpSink, stored: str, written: str) -> None:
    seed_order(relay_runtime)
    with relay_runtime.sessions.begin() as session:
        session.add(AddressState(address=stored, rate_count=0,
                                 suppressed_since=relay_runtime.clock.now()))
    open_refund(relay_runtime)
    with relay_runtime.sessions.begin() as session:
        session.execute(update(OutboxMail).where(OutboxMail.recipient == CUSTOMER)
                        .values(recipient=written))
    sweep_now(relay_runtime, Deliverer(relay_runtime))
    rows = {r.party: r for r in outbox(relay_runtime)}
    assert rows["customer"].state == "failed"
    assert "suppressed" in (rows["customer"].last_error or "")
    assert [m.rcpt_tos for m in smtp_sink.messages] == [(VENDOR,)]


def test_maildir_without_relay(migrated_url: str, tmp_path: Path) -> None:
    runtime = make_runtime(migrated_url, tmp_path)
    try:
        assert runtime.settings.smtp_relay is None
        seed_order(runtime, notify=True)
        open_refund(runtime)
        sweep_now(runtime, Deliverer(runtime))
        box = mailbox.Maildir(str(tmp_path / "outbox"), factory=None, create=False)
        parsed = [BytesParser(policy=policy.default).parsebytes(m.as_bytes()) for m in box]
        assert len(parsed) == 4
        by_event = {(str(m["X-Ticket-Event"]), str(m["To"])): m for m in parsed}
        receipt = by_event[("receipt", f"Ann Example <{CUSTOMER}>")]
        assert receipt["X-Ticket-Id"] is None
        assert receipt["Reply-To"] == "support@tickets.localhost"
        assert receipt["Subject"] == f"Reçu de votre commande {RECEIPT}"
        assert "/r/" in text_part(receipt)  # type: ignore[arg-type]
        sale = by_event[("sale", VENDOR)]
        assert sale["X-Ticket-Id"] is None and "/r/" not in text_part(sale)  # type: ignore[arg-type]
        assert set(states(runtime).values()) == {"sent"}
    finally:
        runtime.close()


def test_claim_lets_only_one_worker_send(relay_runtime: Runtime, smtp_sink: SmtpSink) -> None:
    seed_order(relay_runtime)
    open_refund(relay_runtime)
    now = relay_runtime.clock.now()
    leased = dispatch_due(relay_runtime.sessions, now)
    assert len(leased) == 2
    assert dispatch_due(relay_runtime.sessions, now) == []  # leased: not dispatched twice
    a, b = Deliverer(relay_runtime), Deliverer(relay_runtime)
    outbox_id, lease = leased[0]
    assert a.deliver(outbox_id, lease) == "sent"
    assert b.deliver(outbox_id, lease) == "skipped"  # a duplicate message changes nothing
    assert b.deliver(outbox_id) == "skipped"
    # a message lost with the broker: the lease runs out and the sweep dispatches again
    advance(relay_runtime, seconds=61)
    again = dispatch_due(relay_runtime.sessions, relay_runtime.clock.now())
    assert [i for i, _ in again] == [leased[1][0]]
    assert b.deliver(leased[1][0], lease) == "skipped"  # the old lease is void
    assert b.deliver(*again[0]) == "sent"
    assert len(smtp_sink.messages) == 2


def test_reply_threads_links_and_attachments(make_relay_runtime: Callable[..., Runtime],
                                             smtp_sink: SmtpSink) -> None:
    runtime = make_relay_runtime(max_attachment_bytes="100")
    seed_order(runtime, customer_locale="en", vendor_locale="en")
    deliverer = Deliverer(runtime)
    number = open_refund(runtime)
    sweep_now(runtime, deliverer)
    reply(runtime, number, "Here are the files.", attachments=[
        StoredAttachment("small.txt", "text/plain", 5, b"hello", "s1"),
        StoredAttachment("big.bin", "application/octet-stream", 500, b"x" * 500, "s2"),
        StoredAttachment("kept-out.pdf", "application/pdf", 10**8, None, "s3"),
    ])
    sweep_now(runtime, deliverer)
    mails = smtp_sink.messages
    opened = next(m for m in mails if m.rcpt_tos == (VENDOR,)
                  and m.message["X-Ticket-Event"] == "opened")
    answer = next(m for m in mails if m.rcpt_tos == (VENDOR,)
                  and m.message["X-Ticket-Event"] == "reply")
    assert answer.message["In-Reply-To"] == opened.message["Message-ID"]
    assert opened.message["Message-ID"] in str(answer.message["References"])
    names = [p.get_filename() for p in answer.message.iter_attachments()]
    assert names == ["small.txt"]
    text = text_part(answer.message)
    assert "big.bin" in text and "kept-out.pdf" in text and "not attached" in text
    assert "/t/" in text


def test_vendor_close_gives_the_customer_a_dispute_link(make_relay_runtime: Callable[..., Runtime],
                                                        smtp_sink: SmtpSink) -> None:
    runtime = make_relay_runtime()
    seed_order(runtime, customer_locale="en", vendor_locale="en")
    deliverer = Deliverer(runtime)
    number = open_refund(runtime)
    with runtime.sessions.begin() as session:
        tickets.act(session, runtime.context(), number, Action.CLOSE,
                    Actor(Role.VENDOR, email=VENDOR, source="web"), comment="Solved by phone.")
    sweep_now(runtime, deliverer)
    closed = {m.rcpt_tos[0]: m for m in smtp_sink.messages
              if m.message["X-Ticket-Event"] == "closed"}
    customer_text = text_part(closed[CUSTOMER].message)
    assert "/a/dispute/" in customer_text
    token = customer_text.split("/a/dispute/")[1].split()[0]
    claim = runtime.tokens.verify(token, "dispute", runtime.clock.now())
    assert (claim.subject_id, claim.party) == (number, Role.CUSTOMER)
    assert claim.expires_at == runtime.clock.now() + timedelta(days=90)
    assert "/a/dispute/" not in text_part(closed[VENDOR].message)
