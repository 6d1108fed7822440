"""Take in one raw mail: store it, decide, apply, all in one transaction, then answer.

The answer is given only after the mail and all its effects are committed. A database fault
or any bug answers `451 4.3.0` (the sender retries) and keeps the raw mail in the
unprocessable spool, which `ticketgw mail replay` runs again.
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.domain.errors import Reject
from gateway.domain.redaction import redact_text
from gateway.services import inbox, metrics
from gateway.services.runtime import Runtime
from inbound import pipeline
from inbound.apply import Result, apply
from inbound.decode import safe
from inbound.parse import ParsedMail, parse_mail
from inbound.replies import extract_reply
from inbound.spool import spool_dir, spool_to_disk, spooled
from store.db import is_postgres, writer_turn
from store.models import Ticket

log = logging.getLogger("ticketgw.inbound")

TEMPFAIL = "451 4.3.0 temporary failure; please try again later"
NOT_STORED = "451 4.3.0 we cannot store mail just now; please try again later"
UNKNOWN_RECIPIENT = "550 5.1.1 no such mailbox here"
BAD_TOKEN = "550 5.1.1 this reply address is not valid; reply to a newer mail about the ticket"
BAD_RETURN_PATH = "550 5.1.1 no such return address here: it is not one of our signed ones"
# Per sender (From:) address: mails per window, seconds. Replays are never limited.
RATE_LIMIT = (30, 600)
_UNSAFE_REPLY = re.compile(r"[\x00-\x1f\x7f]+")


@dataclass(frozen=True)
class Outcome:
    state: str  # applied | ignored | rejected | duplicate | failed
    reply: str  # the SMTP answer, e.g. "250 2.0.0 threaded to #1042"
    reason: str
    ticket_number: int | None
    inbound_id: int | None


def check_recipient(runtime: Runtime, address: str) -> str | None:
    """None when `address` is one of ours (a reply or return address only with a valid
    token); otherwise the `550 5.1.1` answer. Reads no database: safe in the event loop."""
    kind, token = pipeline.split_recipient(address, runtime.settings.mail_domain)
    if kind == "unknown":
        return UNKNOWN_RECIPIENT
    if kind == "reply" and (token is None or pipeline.verify_token(runtime.tokens, token) is None):
        return BAD_TOKEN
    if kind == "bounce" and (token is None
                             or pipeline.verify_bounce_token(runtime.tokens, token) is None):
        return BAD_RETURN_PATH
    return None


def receive(runtime: Runtime, raw: bytes, *, envelope_from: str | None, recipient: str,
            channel: str = "smtp", rate: tuple[int, int] | None = None,
            replay_of: int | None = None) -> Outcome:
    """Process one mail; never raises. `replay_of` is the failed row a replay runs again."""
    started = time.perf_counter()
    mail: ParsedMail | None = None
    rule = decision = ""
    try:
        mail = storable(parse_mail(raw, max_attachment_bytes=runtime.settings.max_attachment_bytes))
        limit = (10**9, 1) if channel == "replay" else (rate or RATE_LIMIT)
        outcome, rule, decision = _process(runtime, raw, mail, envelope_from=envelope_from,
                                 recipient=recipient, channel=channel, rate=limit,
                                 replay_of=replay_of)
    except Exception as exc:  # noqa: BLE001 - one bad mail never stops the others; keep it
        log.exception("inbound mail failed; kept for replay",
                      extra={"message_id": mail.message_id if mail else None})
        outcome = park(runtime, raw, mail, envelope_from=envelope_from, recipient=recipient,
                       channel=channel, error=exc, replay_of=replay_of)
        decision = "failed"
    _log(outcome, mail, recipient, rule, decision, time.perf_counter() - started)
    metrics.mail_received(channel, outcome.state, decision)
    return outcome


def storable(mail: ParsedMail) -> ParsedMail:
    """The fields intake stores or queries, as text every database accepts (raw 8-bit header
    bytes arrive as lone surrogates, which neither driver can encode), and the reply's new
    text: all of it worked out before the write transaction."""
    text = safe(mail.text)
    return replace(
        mail, new_text=extract_reply(text), from_addr=safe(mail.from_addr),
        subject=safe(mail.subject),
        message_id=safe(mail.message_id) if mail.message_id is not None else None,
        in_reply_to=[safe(i) for i in mail.in_reply_to],
        references=[safe(i) for i in mail.references], text=text,
        html=safe(mail.html) if mail.html is not None else None,
        auth_results=[safe(v) for v in mail.auth_results],
        attachments=[replace(a, filename=safe(a.filename), content_type=safe(a.content_type),
                             content_id=safe(a.content_id) if a.content_id else None)
                     for a in mail.attachments])


@dataclass(frozen=True)
class Incoming:
    """One mail as a listener hands it to intake."""

    raw: bytes
    envelope_from: str | None
    recipient: str
    channel: str = "smtp"
    rate: tuple[int, int] | None = None


def receive_many(runtime: Runtime, mails: Sequence[Incoming],
                 more: Callable[[], Sequence[Incoming]] | None = None) -> list[Outcome]:
    """Several mails in one transaction, in order (group commit): each is decided and applied
    exactly as if it came alone after the ones before it, and one commit keeps them all
    before any is answered. When anything fails, each runs again alone, so the good ones
    are kept and only the bad one is parked. Never raises.

    `more`, when given, is asked once it is this process's turn to write, for the mails that
    arrived while it waited: they join the batch (outcomes come for them too, in order)."""
    mails = list(mails)
    if len(mails) == 1 and more is None:
        one = mails[0]
        return [receive(runtime, one.raw, envelope_from=one.envelope_from,
                        recipient=one.recipient, channel=one.channel, rate=one.rate)]
    started = time.perf_counter()
    limit = runtime.settings.max_attachment_bytes
    try:
        # parsed before waiting for the turn to write: another process may write meanwhile
        parsed = [storable(parse_mail(m.raw, max_attachment_bytes=limit)) for m in mails]
        with writer_turn(runtime.engine):
            if more is not None:
                extra = list(more())
                mails.extend(extra)
                parsed.extend(storable(parse_mail(m.raw, max_attachment_bytes=limit))
                              for m in extra)
            with runtime.sessions.begin() as session:
                lock_tickets_in_order(session, runtime, mails)
                taken = [_take(session, runtime, m.raw, mail, envelope_from=m.envelope_from,
                               recipient=m.recipient, channel=m.channel,
                               rate=m.rate or RATE_LIMIT, replay_of=None)
                         for m, mail in zip(mails, parsed, strict=True)]
    except Exception:  # noqa: BLE001 - find the one that fails: each alone
        log.warning("a batch of %d mails failed; taking each alone", len(mails), exc_info=True)
        return [receive(runtime, m.raw, envelope_from=m.envelope_from, recipient=m.recipient,
                        channel=m.channel, rate=m.rate) for m in mails]
    seconds = time.perf_counter() - started
    outcomes = []
    for m, mail, (outcome, rule, decision) in zip(mails, parsed, taken, strict=True):
        _log(outcome, mail, m.recipient, rule, decision, seconds)
        metrics.mail_received(m.channel, outcome.state, decision)
        outcomes.append(outcome)
    return outcomes


def lock_tickets_in_order(session: Session, runtime: Runtime,
                          mails: Sequence[Incoming]) -> None:
    """Lock the tickets a batch's reply addresses name, in ticket-number order, before any
    mail of it runs. Each mail locks its ticket when it is applied, in the order the mails
    came: two batches naming the same tickets in opposite orders would each hold one and wait
    for the other until PostgreSQL broke the deadlock a second later. SQLite writers take
    turns on the whole file: nothing to order there."""
    if not is_postgres(session):
        return
    domain = runtime.settings.mail_domain
    numbers = set()
    for m in mails:
        kind, token = pipeline.split_recipient(m.recipient, domain)
        named = pipeline.verify_token(runtime.tokens, token) if kind == "reply" and token else None
        if named is not None:
            numbers.add(named[0])
    if len(numbers) > 1:
        session.execute(select(Ticket.id).where(Ticket.number.in_(sorted(numbers)))
                        .order_by(Ticket.number).with_for_update())


def _process(runtime: Runtime, raw: bytes, mail: ParsedMail, *, envelope_from: str | None,
             recipient: str, channel: str, rate: tuple[int, int],
             replay_of: int | None) -> tuple[Outcome, str, str]:
    with writer_turn(runtime.engine), runtime.sessions.begin() as session:
        outcome, rule, decision = _take(session, runtime, raw, mail, envelope_from=envelope_from,
                                        recipient=recipient, channel=channel, rate=rate,
                                        replay_of=replay_of)
    return outcome, rule, decision


def _take(session: Session, runtime: Runtime, raw: bytes, mail: ParsedMail, *,
          envelope_from: str | None, recipient: str, channel: str, rate: tuple[int, int],
          replay_of: int | None) -> tuple[Outcome, str, str]:
    """Decide and apply one mail in the caller's transaction, after the ones before it."""
    session.flush()  # what the mails before this one changed: the rules read it
    ctx = pipeline.gather(session, runtime, mail, raw, recipient=recipient,
                          envelope_from=envelope_from, exclude_id=replay_of, rate=rate)
    rule, verdict = pipeline.decide(mail, ctx)
    inbound_id = inbox.start(session, raw=raw, sha256=mail.sha256, message_id=mail.message_id,
                             sender=mail.from_addr, envelope_from=envelope_from,
                             recipient=recipient, channel=channel, at=runtime.clock.now(),
                             existing_id=replay_of)
    try:
        # apply() leaves nothing behind when it raises Reject (its own savepoints)
        result = apply(session, runtime, mail, ctx, verdict, inbound_id)
    except Reject as exc:
        # what the mail asked was refused: nothing of it stays, the refusal does
        result = Result(inbox.REJECTED, f"rejected_{exc.code}"[:40], exc.message,
                        f"{exc.smtp_code} {exc.message}")
    state = inbox.IGNORED if result.state == "duplicate" else result.state
    ticket = result.ticket
    inbox.finish(session, inbound_id, state, result.decision, result.reason,
                 ticket.id if ticket is not None else None, drop_raw=not result.keep_raw)
    number = ticket.number if ticket is not None else verdict.ticket_number
    return (Outcome(result.state, _reply_text(result.reply), result.reason, number, inbound_id),
            rule, result.decision)


def park(runtime: Runtime, raw: bytes, mail: ParsedMail | None, *, envelope_from: str | None,
         recipient: str, channel: str, error: BaseException,
         replay_of: int | None = None) -> Outcome:
    """Keep a mail that failed: as a `failed` row, or in the spool directory when even the
    database cannot take it. The answer tells nothing of the fault."""
    # kept on the row (`mail why` prints it) or in the spool: no token in it
    detail = redact_text(f"{type(error).__name__}: {error}")[:4000]
    try:
        with runtime.sessions.begin() as session:
            found = inbox.load_failed(session, replay_of) if replay_of is not None else None
            if found is None:
                inbound_id: int | None = inbox.start(
                    session, raw=raw, sha256=hashlib.sha256(raw).hexdigest(),
                    message_id=mail.message_id if mail else None,
                    sender=mail.from_addr if mail else "", envelope_from=envelope_from,
                    recipient=recipient, channel=channel, at=runtime.clock.now())
            else:
                found.attempts = (found.attempts or 0) + 1
                session.flush()
                inbound_id = found.id
            assert inbound_id is not None
            inbox.finish(session, inbound_id, inbox.FAILED, "failed",
                         "internal error; kept for replay", error=detail)
    except Exception:  # noqa: BLE001 - the database is down: the spool directory keeps it
        log.exception("database unavailable; mail spooled to disk")
        # a failed row being replayed stays in the database for the next replay
        if replay_of is None and not _kept_in_spool(
                runtime, raw, envelope_from=envelope_from, recipient=recipient, error=detail):
            return Outcome(inbox.FAILED, NOT_STORED, "neither the database nor the spool "
                           "directory took it; the sender retries", None, None)
        inbound_id = None
    return Outcome(inbox.FAILED, TEMPFAIL, "internal error; kept for replay", None, inbound_id)


def _kept_in_spool(runtime: Runtime, raw: bytes, *, envelope_from: str | None,
                   recipient: str, error: str) -> bool:
    """Keep a mail the database could not take in the spool directory; False when that
    fails too (a full disk, the folder unwritable): the mail is then not kept at all, and its
    `451` leaves it to the sender, who retries."""
    try:
        spool_to_disk(runtime, raw, envelope_from=envelope_from, recipient=recipient,
                      error=error)
    except Exception:  # noqa: BLE001 - whatever the fault, the answer must still be given
        log.critical("database and spool directory unavailable; mail not kept, answered 451",
                     exc_info=True, extra={"spool": str(spool_dir(runtime))})
        return False
    return True


def replay(runtime: Runtime) -> list[Outcome]:
    """Run the unprocessable spool again: failed rows, then the spool directory's files."""
    outcomes = []
    with runtime.sessions() as session:
        ids = inbox.failed_ids(session)
    for inbound_id in ids:
        with runtime.sessions() as session:
            row = inbox.load_failed(session, inbound_id)
            if row is None:
                continue
            raw, envelope_from, recipient = bytes(row.raw), row.envelope_from, row.recipient
        outcomes.append(receive(runtime, raw, envelope_from=envelope_from, recipient=recipient,
                                channel="replay", replay_of=inbound_id))
    for mail in spooled(runtime):
        outcome = receive(runtime, mail.raw, envelope_from=mail.envelope_from,
                          recipient=mail.recipient, channel="replay")
        outcomes.append(outcome)
        if outcome.state != inbox.FAILED:
            mail.remove()
    return outcomes


def redact_address(address: str | None) -> str:
    return redact_text(address) if address else ""


def _reply_text(reply: str) -> str:
    """One line of ASCII: an SMTP reply must not carry CR/LF or 8-bit text."""
    text = _UNSAFE_REPLY.sub(" ", reply).encode("ascii", "replace").decode("ascii")
    return text[:480]


def _log(outcome: Outcome, mail: ParsedMail | None, recipient: str, rule: str, decision: str,
         seconds: float) -> None:
    log.info("inbound mail %s", outcome.state, extra={
        "message_id": mail.message_id if mail else None,
        "sender": redact_address(mail.from_addr if mail else None),
        "recipient": redact_address(recipient),
        "decision": decision, "state": outcome.state, "reason": outcome.reason, "rule": rule,
        "ticket": outcome.ticket_number, "inbound_id": outcome.inbound_id,
        "ms": round(seconds * 1000, 1),
    })
