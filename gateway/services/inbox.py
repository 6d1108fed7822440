"""Inbound mail bookkeeping: each mail's record and decision, and what senders have done.

That is: de-duplication, the spool of mail that failed, once-a-day notices, per-sender rate
limits and bouncing addresses."""

from __future__ import annotations

import functools
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, case, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from gateway.domain.clock import format_instant
from gateway.services import journal
from store.db import is_postgres
from store.models import AddressState, InboundMail, Message, Ticket
from store.types import UTCDateTime

APPLIED, IGNORED, REJECTED, FAILED = "applied", "ignored", "rejected", "failed"
# Mail in these states was fully processed: the same mail again changes nothing.
_DONE = (APPLIED, IGNORED)
NOTICE_INTERVAL = timedelta(days=1)


def _text(value: str) -> str:
    """Text both databases accept: no NUL, no lone surrogates."""
    return value.replace("\x00", "").encode("utf-8", "replace").decode("utf-8")


# Built once: intake runs these for every mail, and building a statement costs more than
# running it (SQLAlchemy then finds the compiled form in its cache). The states are spelled
# out: an IN list of binds is rewritten on every run ("expanding" parameters).
_DONE_STATE = or_(*(InboundMail.state == state for state in _DONE))
_SAME_MESSAGE = (
    select(InboundMail.id)
    .where(_DONE_STATE, InboundMail.message_id == bindparam("message_id"),
           InboundMail.sender == bindparam("sender"), InboundMail.id != bindparam("exclude"))
    .order_by(InboundMail.id).limit(1))
_SAME_BYTES = (
    select(InboundMail.id)
    .where(_DONE_STATE, InboundMail.sha256 == bindparam("sha256"),
           InboundMail.message_id.is_(None), InboundMail.id != bindparam("exclude"))
    .order_by(InboundMail.id).limit(1))


def find_duplicate(session: Session, *, message_id: str | None, sender: str, sha256: str,
                   exclude_id: int | None = None) -> int | None:
    """An earlier, processed mail with the same identity: Message-ID and sender, or the
    same bytes when there is no Message-ID."""
    exclude = -1 if exclude_id is None else exclude_id  # ids are positive
    if message_id:
        params: dict[str, object] = {"message_id": message_id[:998], "sender": sender[:320],
                                     "exclude": exclude}
        return session.connection().execute(_SAME_MESSAGE, params).scalar_one_or_none()
    return session.connection().execute(
        _SAME_BYTES, {"sha256": sha256, "exclude": exclude}).scalar_one_or_none()


def start(session: Session, *, raw: bytes, sha256: str, message_id: str | None, sender: str,
          envelope_from: str | None, recipient: str, channel: str, at: datetime,
          existing_id: int | None = None) -> int:
    """The mail's row, written first so messages can point at it; its decision comes later.
    Returns its id (a replayed mail keeps its row and counts one more attempt)."""
    table = journal.table_of(InboundMail)
    if existing_id is not None:
        found = session.connection().execute(
            update(table).where(table.c.id == existing_id)
            .values(attempts=func.coalesce(table.c.attempts, 0) + 1)).rowcount
        if found:
            return existing_id
    return journal.insert_row(session, InboundMail, {
        "message_id": _text(message_id)[:998] if message_id else None,
        "sender": _text(sender)[:320],
        "envelope_from": _text(envelope_from)[:320] if envelope_from is not None else None,
        "recipient": _text(recipient)[:320], "channel": channel, "received_at": at,
        "sha256": sha256, "raw": raw, "state": FAILED, "decision": "processing", "reason": "",
        "attempts": 1,
    })


_FINISH = {drop: update(journal.table_of(InboundMail))
           .where(journal.table_of(InboundMail).c.id == bindparam("inbound_id"))
           .values(state=bindparam("state"), decision=bindparam("decision"),
                   reason=bindparam("reason"), ticket_id=bindparam("ticket_id"),
                   error=bindparam("error"), **({"raw": b""} if drop else {}))
           for drop in (False, True)}


def finish(session: Session, inbound_id: int, state: str, decision: str, reason: str,
           ticket_id: int | None = None, error: str | None = None, *,
           drop_raw: bool = False) -> None:
    """Record the decision. `drop_raw`: the sender keeps the mail and sends it again."""
    session.connection().execute(_FINISH[drop_raw], {
        "inbound_id": inbound_id, "state": state, "decision": decision[:40], "reason": reason,
        "ticket_id": ticket_id, "error": error})


def mark_forwarded(session: Session, inbound_id: int, forwarder: str) -> None:
    """Mark the messages an inbound mail wrote as forwarded by `forwarder`."""
    session.flush()
    session.connection().execute(
        update(Message).where(Message.inbound_id == inbound_id)
        .values(forwarded_by=forwarder[:320]))


def why(session: Session, message_id: str) -> list[dict[str, Any]]:
    """Every recorded mail with this Message-ID (with or without <>), oldest first."""
    bare = message_id.strip().strip("<>").strip()
    rows = session.execute(
        select(InboundMail, Ticket.number).outerjoin(Ticket, Ticket.id == InboundMail.ticket_id)
        .where(InboundMail.message_id.in_((bare, f"<{bare}>"))).order_by(InboundMail.id)
    ).all()
    return [{
        "id": row.id, "message_id": row.message_id, "sender": row.sender,
        "recipient": row.recipient, "channel": row.channel,
        "received_at": format_instant(row.received_at), "state": row.state,
        "decision": row.decision, "reason": row.reason, "ticket": number,
        "error": row.error, "attempts": row.attempts,
    } for row, number in rows]


def failed_ids(session: Session, limit: int = 1000) -> list[int]:
    """The unprocessable spool kept in the database, oldest first."""
    return list(session.execute(
        select(InboundMail.id).where(InboundMail.state == FAILED).order_by(InboundMail.id)
        .limit(limit)).scalars())


def load_failed(session: Session, inbound_id: int) -> InboundMail | None:
    row = session.get(InboundMail, inbound_id)
    return row if row is not None and row.state == FAILED else None


def _address_row(session: Session, address: str, *, lock: bool = True) -> AddressState:
    """The address's row, created if missing; locked on PostgreSQL so counters add up."""
    address = address.lower()[:320]
    values = {"address": address, "rate_count": 0}
    if is_postgres(session):
        session.execute(postgresql.insert(AddressState).values(**values).on_conflict_do_nothing())
    else:
        session.execute(sqlite.insert(AddressState).values(**values).on_conflict_do_nothing())
    query = select(AddressState).where(AddressState.address == address)
    if lock and is_postgres(session):
        query = query.with_for_update()
    return session.execute(query.execution_options(populate_existing=True)).scalar_one()


@functools.cache
def _count_statement(postgres: bool) -> Any:
    """One upsert that counts a mail and also takes the row's lock on PostgreSQL, and leaves
    nothing for the session to flush. The stored start has whole seconds, so comparing it
    with the bound `now - window` (also cut to seconds) is the same test as
    `now - start >= window`."""
    table = AddressState.__table__.c
    now = bindparam("now", type_=UTCDateTime())
    restart = or_(table.rate_window_start.is_(None),
                  table.rate_window_start <= bindparam("bound", type_=UTCDateTime()))
    insert = postgresql.insert if postgres else sqlite.insert
    return (  # on the table, not the entity: the ORM's bulk-insert path is not needed here
        insert(journal.table_of(AddressState))
        .values(address=bindparam("address"), rate_window_start=now, rate_count=1)
        .on_conflict_do_update(index_elements=[table.address], set_={
            "rate_window_start": case((restart, now), else_=table.rate_window_start),
            "rate_count": case((restart, 1), else_=table.rate_count + 1)})
        .returning(table.rate_count))


def count_mail(session: Session, address: str, now: datetime, limit: int,
               window: timedelta) -> bool:
    """Count one mail from `address` in a fixed window; True when it is over the limit."""
    if not address:
        return False
    count = session.connection().execute(_count_statement(is_postgres(session)), {
        "address": address.lower()[:320], "now": now, "bound": now - window}).scalar_one()
    return int(count) > limit


def take_notice(session: Session, address: str, kind: str, now: datetime) -> bool:
    """True (and remembered) when no notice of this kind went to `address` in the last day."""
    row = _address_row(session, address)
    notices = dict(row.notices or {})
    last = notices.get(kind)
    if last is not None and now - datetime.fromisoformat(last) < NOTICE_INTERVAL:
        return False
    notices[kind] = now.isoformat()
    row.notices = notices
    return True


def mark_bouncing(session: Session, addresses: Iterable[str], now: datetime, *,
                  hard: Iterable[str] = ()) -> None:
    """A bounce marks each failed address bouncing; those in `hard` (a permanent failure,
    5.x.x) are also suppressed until the address changes."""
    permanent = {a.lower() for a in hard}
    for address in addresses:
        row = _address_row(session, address)
        row.bouncing_since = row.bouncing_since or now
        if address.lower() in permanent:
            row.suppressed_since = row.suppressed_since or now


def address_state(session: Session, address: str) -> AddressState | None:
    return session.get(AddressState, address.lower())
