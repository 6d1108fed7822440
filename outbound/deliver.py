"""Deliver one outbox row: claim it, render it once, send it, record what happened.

A row is claimed by a conditional UPDATE (still pending, and its time has come — or it still
carries the lease the sweep dispatched it with), which pushes `next_attempt_at` forward as a
lease: two workers never send one row at once, and a worker that dies mid-send leaves a row
the sweep picks up again once the lease runs out. The bytes are rendered on the first attempt
and stored in `raw` in the claiming transaction; every retry resends exactly those bytes.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, bindparam, select, text, update
from sqlalchemy.orm import Session

from gateway.domain.facts import Role
from gateway.services import metrics
from gateway.services.runtime import Runtime
from outbound.compose import Composer
from outbound.history import EarlierMail, mail_to_recipient
from outbound.transports import PermanentFailure, TemporaryFailure, Transport, transport_for
from store.db import is_postgres
from store.models import AddressState, OutboxMail

log = logging.getLogger("ticketgw.outbound")

# How long a claimed row is left alone while one worker renders and sends it.
SEND_LEASE = timedelta(minutes=5)


@dataclass(frozen=True)
class RetryPolicy:
    """Back-off while the relay is down: 1, 2, 4 … minutes, at most an hour, then give up."""

    max_attempts: int = 12
    first_delay: timedelta = timedelta(minutes=1)
    max_delay: timedelta = timedelta(hours=1)

    def delay(self, attempts: int) -> timedelta:
        delay: timedelta = self.first_delay * (2 ** max(attempts - 1, 0))
        return min(delay, self.max_delay)


# Core tables: a mail's own row is read and written by statements, not loaded as an object.
_OUTBOX = cast(Table, OutboxMail.__table__)
_ADDRESSES = cast(Table, AddressState.__table__)


@dataclass(frozen=True)
class Claimed:
    """The columns of a claimed row that rendering and sending read (`OutboxFields`)."""

    id: int
    ticket_id: int | None
    order_id: int | None
    upto_message_id: int | None
    event_id: int | None  # the change it reports: a mail says what that change was
    event: str
    notice_kind: str | None
    party: str
    recipient: str
    locale: str
    payload: dict[str, Any] | None
    message_id: str | None
    raw: bytes | None
    created_at: datetime  # when the row was written: delivery latency counts from it
    # when a hard bounce suppressed the recipient, looked up as written (see `_suppressed`)
    suppressed_since: datetime | None

    @property
    def merged(self) -> list[int]:
        """The held rows this one carries as a digest."""
        return list((self.payload or {}).get("digest_of") or [])


_CLAIMED = (
    *(_OUTBOX.c[f.name] for f in fields(Claimed) if f.name != "suppressed_since"),
    select(_ADDRESSES.c.suppressed_since)
    .where(_ADDRESSES.c.address == _OUTBOX.c.recipient).scalar_subquery(),
)

# Built once: every mail runs these, and a built statement skips construction and keying.
_CAP_TURN = text("SELECT pg_advisory_xact_lock(:ticket_id, hashtext(:recipient))")
# A row is ours when it is pending and due — or still carries the lease it was dispatched with.
_CLAIM = (update(_OUTBOX)
          .where(_OUTBOX.c.id == bindparam("outbox_id"), _OUTBOX.c.state == "pending",
                 _OUTBOX.c.next_attempt_at <= bindparam("now"))
          .values(next_attempt_at=bindparam("until"))
          .returning(*_CLAIMED))
_CLAIM_LEASED = (update(_OUTBOX)
                 .where(_OUTBOX.c.id == bindparam("outbox_id"), _OUTBOX.c.state == "pending",
                        (_OUTBOX.c.next_attempt_at <= bindparam("now"))
                        | (_OUTBOX.c.next_attempt_at == bindparam("lease")))
                 .values(next_attempt_at=bindparam("until"))
                 .returning(*_CLAIMED))
_STORE = (update(_OUTBOX).where(_OUTBOX.c.id == bindparam("outbox_id"))
          .values(raw=bindparam("rendered"), message_id=bindparam("mid")))
_MARK_SENT = (update(_OUTBOX).where(_OUTBOX.c.id == bindparam("outbox_id"))
              .values(state="sent", sent_at=bindparam("at"), next_attempt_at=None,
                      last_error=None, attempts=_OUTBOX.c.attempts + 1))
_SUPPRESSED = select(_ADDRESSES.c.address, _ADDRESSES.c.suppressed_since).where(
    (_ADDRESSES.c.address == bindparam("key")) | (_ADDRESSES.c.address == bindparam("address")))


@dataclass(frozen=True)
class Prepared:
    row: Claimed
    raw: bytes
    message_id: str | None


class Deliverer:
    """Delivers outbox rows for one process; thread-safe (each call has its own sessions)."""

    def __init__(self, runtime: Runtime, *, transport: Transport | None = None,
                 composer: Composer | None = None, retry: RetryPolicy | None = None) -> None:
        self.runtime = runtime
        self.sessions = runtime.sessions
        self.settings = runtime.settings
        self.transport = transport or transport_for(runtime.settings)
        self.composer = composer or Composer(runtime.settings, runtime.tokens)
        self.retry = retry or RetryPolicy()

    def deliver(self, outbox_id: int, lease: datetime | None = None) -> str:
        """Deliver one row; returns sent, retry, failed, deferred or skipped (not ours now)."""
        now = self.runtime.clock.now()
        with self.sessions.begin() as session:
            row = _claim(session, outbox_id, now, lease)
            if row is None:
                return "skipped"
            prepared = self._prepare(session, row, now)
            if isinstance(prepared, str):
                return prepared
        try:
            self.transport.send(self.return_path(row), row.recipient, prepared.raw)
        except PermanentFailure as exc:
            return self._failed(outbox_id, str(exc))
        except TemporaryFailure as exc:
            return self._temporary(outbox_id, str(exc))
        return self._sent(prepared)

    def return_path(self, row: Claimed) -> str:
        """The envelope sender of the row's mail, `bounce+TOKEN@`: a delivery report comes
        back to it, and the signed token names this row, so the report counts against this
        mail's recipient only (SPEC 8; VERP). The same every try."""
        return self.composer.links.bounce_address(row.id, Role(row.party))

    def close(self) -> None:
        """Close what the calling worker thread holds (its relay connection)."""
        self.transport.close()

    def _prepare(self, session: Session, row: Claimed, now: datetime) -> Prepared | str:
        suppressed = _suppressed(session, row)
        if suppressed is not None:
            _give_up(session, row.id, row.merged,
                     f"not mailed: {row.recipient} is suppressed since "
                     f"{suppressed:%Y-%m-%d %H:%M:%S}Z after a hard bounce")
            log.warning("outbox suppressed", extra={"outbox_id": row.id})
            return "failed"
        if row.raw is not None:
            return Prepared(row, row.raw, row.message_id)  # a retry resends the stored bytes
        if row.ticket_id is not None and is_postgres(session):
            # one cap check at a time per recipient and ticket: two workers reading the same
            # history at once would each find room for one more (SQLite writers take turns)
            session.execute(_CAP_TURN, {"ticket_id": row.ticket_id, "recipient": row.recipient})
        earlier = mail_to_recipient(session, row)
        release_at = self._cap_release(row, earlier, now)
        if release_at is not None:
            _set(session, row.id, state="deferred", next_attempt_at=release_at)
            log.info("outbox deferred by cap", extra={"outbox_id": row.id})
            return "deferred"
        try:
            composed = self.composer.compose(session, row, now, earlier=earlier)
        except Exception as exc:  # a template or data fault parks this mail, not the others
            _give_up(session, row.id, row.merged,
                     f"rendering failed: {type(exc).__name__}: {exc}")
            log.exception("outbox rendering failed", extra={"outbox_id": row.id})
            return "failed"
        session.execute(_STORE, {"outbox_id": row.id, "rendered": composed.raw,
                                 "mid": composed.message_id})
        return Prepared(row, composed.raw, composed.message_id)

    def _cap_release(self, row: Claimed, earlier: Sequence[EarlierMail], now: datetime
                     ) -> datetime | None:
        """When a row over the notification cap may go (as a digest), or None to send now.

        `earlier` is the recipient's other mail on the ticket: a digest already waiting is
        joined (mail stays in order); otherwise the mails sent within the window count, the
        rows of one digest as one mail.
        """
        if row.ticket_id is None or (row.payload or {}).get("digest_of") is not None:
            return None
        held = [m.next_attempt_at for m in earlier
                if m.state == "deferred" and m.next_attempt_at is not None]
        if held:
            return min(held)
        count, seconds = self.settings.notify_cap
        window = timedelta(seconds=seconds)
        recent = [m for m in earlier
                  if m.state == "sent" and m.sent_at is not None and m.sent_at > now - window]
        # a mail another worker is sending at this moment counts as sent now
        flying = [m for m in earlier if m.in_flight]
        if len({m.message_id for m in recent + flying}) < count:
            return None
        return min([m.sent_at for m in recent if m.sent_at is not None] + [now]) + window

    def _sent(self, prepared: Prepared) -> str:
        now = self.runtime.clock.now()
        row = prepared.row
        with self.sessions.begin() as session:
            session.execute(_MARK_SENT, {"outbox_id": row.id, "at": now})
            if row.merged:
                session.execute(
                    update(_OUTBOX).where(_OUTBOX.c.id.in_(row.merged))
                    .values(state="sent", sent_at=now, message_id=prepared.message_id,
                            next_attempt_at=None))
        metrics.mail_sent(now - row.created_at)
        log.info("outbox sent", extra={"outbox_id": row.id})
        return "sent"

    def _temporary(self, outbox_id: int, error: str) -> str:
        now = self.runtime.clock.now()
        with self.sessions.begin() as session:
            row = session.get(OutboxMail, outbox_id, populate_existing=True)
            assert row is not None
            row.attempts += 1
            row.last_error = error[:2000]
            if row.attempts >= self.retry.max_attempts:
                row.state, row.next_attempt_at = "failed", None
                _fail_merged(session, row.id, row.payload, row.last_error)
                log.error("outbox gave up", extra={"outbox_id": outbox_id, "error": error})
                return "failed"
            row.next_attempt_at = now + self.retry.delay(row.attempts)
        log.warning("outbox retry later", extra={"outbox_id": outbox_id, "error": error})
        return "retry"

    def _failed(self, outbox_id: int, error: str) -> str:
        with self.sessions.begin() as session:
            row = session.get(OutboxMail, outbox_id, populate_existing=True)
            assert row is not None
            row.attempts += 1
            row.state, row.next_attempt_at, row.last_error = "failed", None, error[:2000]
            _fail_merged(session, row.id, row.payload, row.last_error)
        log.error("outbox refused", extra={"outbox_id": outbox_id, "error": error})
        return "failed"


def _set(session: Session, outbox_id: int, **values: Any) -> None:
    session.execute(update(_OUTBOX).where(_OUTBOX.c.id == outbox_id).values(**values))


def _give_up(session: Session, outbox_id: int, merged: Sequence[int], error: str) -> None:
    """Park a row as failed without sending it, and the mail its digest carries with it."""
    _set(session, outbox_id, state="failed", next_attempt_at=None, last_error=error[:2000])
    _fail_merged(session, outbox_id, {"digest_of": merged}, error[:2000])


def _fail_merged(session: Session, outbox_id: int, payload: dict[str, Any] | None,
                 error: str) -> None:
    """A digest that fails takes the mail it carries with it: failed, and visible as such."""
    merged = (payload or {}).get("digest_of") or []
    if merged:
        session.execute(
            update(_OUTBOX).where(_OUTBOX.c.id.in_(merged), _OUTBOX.c.state == "deferred")
            .values(state="failed", next_attempt_at=None,
                    last_error=f"held for the digest outbox {outbox_id}: {error}"[:2000]))


def _claim(session: Session, outbox_id: int, now: datetime, lease: datetime | None
           ) -> Claimed | None:
    """Take the row for this worker and read it, or None when it is not ours to send now."""
    until = max(now, lease or now) + SEND_LEASE
    found = session.execute(_CLAIM if lease is None else _CLAIM_LEASED,
                            {"outbox_id": outbox_id, "now": now, "lease": lease, "until": until}
                            ).first()
    return Claimed(*tuple(found)) if found is not None else None


def _suppressed(session: Session, row: Claimed) -> datetime | None:
    """When a hard bounce suppressed the row's recipient. Suppression is stored for the
    address trimmed and in lower case; the claim already read it for the address as written,
    which is all there is to look up when the two are the same."""
    if row.recipient == row.recipient.strip().lower():
        return row.suppressed_since
    return _suppressed_since(session, row.recipient)


def _suppressed_since(session: Session, address: str) -> datetime | None:
    """When a hard bounce suppressed `address` (looked up as stored: trimmed, lower case)."""
    key = address.strip().lower()
    found: dict[str, datetime | None] = {
        a: at for a, at in session.execute(_SUPPRESSED, {"key": key, "address": address})}
    return found[key] if key in found else found.get(address)


def retry_failed(runtime: Runtime) -> int:
    """`ticketgw outbox retry`: failed rows become pending again, with a fresh retry budget."""
    now = runtime.clock.now()
    with runtime.sessions.begin() as session:
        result = session.execute(
            update(OutboxMail).where(OutboxMail.state == "failed")
            .values(state="pending", attempts=0, next_attempt_at=now)
            .execution_options(synchronize_session=False))
        return int(result.rowcount)  # type: ignore[attr-defined]
