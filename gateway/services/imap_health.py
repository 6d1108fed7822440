"""IMAP mailbox health: each mailbox's heartbeat row, read by /healthz, and the operator's mail.

A mailbox that stops being read must not go unnoticed. The poller writes one row a mailbox
after every pass and every failure, in the table the SMTP listeners' heartbeats use (the IMAP
poller is intake too; the web reads both from the database, on any machine). The columns mean:
`listener` `imap:` and the mailbox, `address` IMAP_ADDRESS, `alive` 1 while it works and 0
while it fails, `restarts` the failures in a row, `restarted_at` when they began, `started_at`
the last good pass, `last_error` the stage and the server's or provider's words.

The operator (TICKETGW_OPERATOR_EMAIL, else TICKETGW_STAFF_EMAIL) is mailed at the first
failure and then once a day while it lasts (`inbox.take_notice`). The mail is English only: it
goes to whoever runs the gateway, who reads its English logs and docs too.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, formataddr
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from gateway.domain.clock import format_instant
from gateway.services import inbox, journal
from store.models import IntakeHeartbeat, OutboxMail

IMAP_ADDRESS = "imap"
PREFIX = "imap:"
# a mailbox polls at least every IDLE period (290 s): three missed and it is silent
SILENT_AFTER = timedelta(minutes=15)
STATES = ("ok", "failing", "silent")
LOOP_HEADER = "X-Ticketgw-Loop"  # outbound.message.LOOP_HEADER: our mail is never taken in


def _row(session: Session, mailbox: str, now: datetime) -> IntakeHeartbeat:
    listener = (PREFIX + mailbox)[:300]
    row = session.get(IntakeHeartbeat, listener)
    if row is None:
        row = IntakeHeartbeat(listener=listener, address=IMAP_ADDRESS, started_at=now,
                              beat_at=now, threads=1, alive=1, restarts=0)
        session.add(row)
    return row


def succeeded(session: Session, mailbox: str, now: datetime) -> datetime | None:
    """A good pass. Returns when the failures it ends began (None: it was not failing)."""
    row = _row(session, mailbox, now)
    since = row.restarted_at if not row.alive else None
    row.alive, row.restarts, row.restarted_at, row.last_error = 1, 0, None, None
    row.started_at = row.beat_at = now
    return since


def failed(session: Session, mailbox: str, stage: str, error: str, now: datetime, *,
           operator: str, domain: str) -> bool:
    """A failure at `stage`; True when the operator was mailed about it (the first, then once
    a day while it lasts)."""
    row = _row(session, mailbox, now)
    if row.alive:
        row.alive, row.restarts, row.restarted_at = 0, 0, now
    row.restarts += 1
    row.beat_at, row.last_error = now, f"{stage}: {error}"[:2000]
    if not inbox.take_notice(session, operator, f"imap:{mailbox}"[:60], now):
        return False
    _operator_mail(session, mailbox, row, now, operator=operator, domain=domain)
    return True


def forget(session: Session, mailbox: str) -> None:
    """A poller that stops cleanly leaves no row (an SMTP listener does the same)."""
    session.execute(delete(IntakeHeartbeat).where(
        IntakeHeartbeat.listener == (PREFIX + mailbox)[:300]))


def forget_others(session: Session, mailboxes: list[str]) -> None:
    """Rows of mailboxes no longer configured: nobody will write them again."""
    keep = [(PREFIX + m)[:300] for m in mailboxes]
    session.execute(delete(IntakeHeartbeat).where(
        IntakeHeartbeat.address == IMAP_ADDRESS, IntakeHeartbeat.listener.not_in(keep)))


def state_of(row: IntakeHeartbeat, now: datetime) -> str:
    if not row.alive:
        return "failing"
    return "silent" if now - row.beat_at > SILENT_AFTER else "ok"


def report(session: Session, now: datetime) -> dict[str, Any] | None:
    """`{"imap": worst state, "mailboxes": [...]}`, or None when no mailbox is polled."""
    rows = session.scalars(select(IntakeHeartbeat).where(
        IntakeHeartbeat.address == IMAP_ADDRESS).order_by(IntakeHeartbeat.listener)).all()
    if not rows:
        return None
    mailboxes = [{
        "mailbox": row.listener[len(PREFIX):], "state": state_of(row, now),
        "last_success": format_instant(row.started_at) if row.alive else None,
        "failing_since": format_instant(row.restarted_at), "failures": row.restarts,
        "last_error": row.last_error, "beat_at": format_instant(row.beat_at),
    } for row in rows]
    worst = max((entry["state"] for entry in mailboxes), key=STATES.index)
    return {"imap": worst, "mailboxes": mailboxes}


def _operator_mail(session: Session, mailbox: str, row: IntakeHeartbeat, now: datetime, *,
                   operator: str, domain: str) -> None:
    """An outbox row with its bytes already made: the worker sends them as they are."""
    since = row.restarted_at or now
    message = EmailMessage()
    message["From"] = formataddr(("ticketgw", f"support@{domain}"))
    message["To"] = operator
    message["Subject"] = f"IMAP mailbox not read: {mailbox}"
    message["Date"] = format_datetime(now)
    message["Message-ID"] = message_id = journal.new_message_id(domain)
    message["Auto-Submitted"] = "auto-generated"
    message[LOOP_HEADER] = domain
    message.set_content(
        f"The IMAP poller cannot read the mailbox {mailbox}.\n\n"
        f"Failing since: {format_instant(since)} (UTC), {row.restarts} failure(s) in a row\n"
        f"Last error: {row.last_error}\n\n"
        "It keeps trying; mail waiting there is taken in, however old, once it works again.\n"
        "A refused login or token refresh (invalid_grant) needs a new password or refresh\n"
        "token: see docs/operations.md, 'IMAP mailboxes and OAuth2'. /healthz shows the\n"
        "mailbox as failing until then. This mail is sent again once a day while it lasts.\n")
    session.add(OutboxMail(
        ticket_id=None, order_id=None, event="operator", party="staff", recipient=operator,
        locale="en", payload={"mailbox": mailbox}, state="pending", attempts=0,
        message_id=message_id, raw=message.as_bytes(), created_at=now, next_attempt_at=now))
