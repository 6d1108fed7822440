"""Clock-driven sweeps: dispatch outbox rows whose time has come, release digests, deadlines.

The outbox table, not the broker, is the record of what must be sent: whichever process wrote
a row (a CLI command included), the periodic sweep finds it and hands its id to a worker. A
dispatched row carries a short lease in `next_attempt_at`, so a message lost with an embedded
broker's memory is simply dispatched again when the lease runs out.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from gateway.domain.clock import Clock
from gateway.services import metrics
from gateway.services.deadlines import SweepResult, run_due
from gateway.services.runtime import Runtime
from store.db import is_postgres
from store.models import OutboxMail

log = logging.getLogger("ticketgw.sweeps")

# A dispatched row is not dispatched again for this long (unless a worker took it first).
DISPATCH_LEASE = timedelta(seconds=60)
BATCH = 1000


def dispatch_due(sessions: sessionmaker[Session], now: datetime, *, limit: int = BATCH,
                 lease: timedelta = DISPATCH_LEASE) -> list[tuple[int, datetime]]:
    """Lease up to `limit` due pending rows; returns (id, lease) pairs to hand to workers."""
    until = now + lease
    with sessions.begin() as session:
        query = (select(OutboxMail.id)
                 .where(OutboxMail.state == "pending", OutboxMail.next_attempt_at <= now)
                 .order_by(OutboxMail.next_attempt_at, OutboxMail.id).limit(limit))
        if is_postgres(session):
            query = query.with_for_update(skip_locked=True)
        ids = list(session.execute(query).scalars())
        if not ids:
            return []
        leased = session.execute(
            update(OutboxMail)
            .where(OutboxMail.id.in_(ids), OutboxMail.state == "pending",
                   OutboxMail.next_attempt_at <= now)
            .values(next_attempt_at=until)
            .returning(OutboxMail.id)
            .execution_options(synchronize_session=False)
        ).scalars().all()
    return [(outbox_id, until) for outbox_id in sorted(leased)]


def release_digests(sessions: sessionmaker[Session], now: datetime) -> int:
    """Held mail whose window has passed: per recipient and ticket, the newest row goes out
    as one digest naming the others (SPEC 11.10: deferred, never dropped)."""
    with sessions() as session:
        groups = session.execute(
            select(OutboxMail.recipient, OutboxMail.ticket_id)
            .where(OutboxMail.state == "deferred", OutboxMail.next_attempt_at <= now)
            .group_by(OutboxMail.recipient, OutboxMail.ticket_id)
        ).all()
    released = 0
    for recipient, ticket_id in groups:
        with sessions.begin() as session:
            query = (select(OutboxMail)
                     .where(OutboxMail.recipient == recipient, OutboxMail.ticket_id == ticket_id,
                            OutboxMail.state == "deferred", OutboxMail.next_attempt_at <= now)
                     .order_by(OutboxMail.id))
            if is_postgres(session):
                query = query.with_for_update()
            rows = list(session.execute(query).scalars())
            if not rows:
                continue  # another sweep released it
            carrier, held = rows[-1], rows[:-1]
            carrier.state, carrier.next_attempt_at = "pending", now
            carrier.payload = {**(carrier.payload or {}), "digest_of": [r.id for r in held]}
            for row in held:
                # still waiting (counted as pending) until the digest that carries it is sent
                row.next_attempt_at = None
            released += 1
    return released


def sweep_outbox(sessions: sessionmaker[Session], clock: Clock,
                 dispatch: Callable[[int, datetime], None], *, batch: int = BATCH) -> int:
    """Release due digests, then hand every due row to `dispatch`; returns how many."""
    now = clock.now()
    release_digests(sessions, now)
    total = 0
    while True:
        leased = dispatch_due(sessions, now, limit=batch)
        for outbox_id, lease in leased:
            dispatch(outbox_id, lease)
        total += len(leased)
        if len(leased) < batch:
            return total


def sweep_deadlines(runtime: Runtime) -> SweepResult:
    """Execute every due refund, cancellation, warning and auto-close."""
    result = run_due(runtime.sessions, runtime.context, runtime.refunds)
    metrics.deadlines_swept(result.processed, result.warnings, result.closed, len(result.failed))
    if result.total or result.failed:
        # tickets by number, as people know them (#1042)
        log.info("deadlines swept", extra={"processed": result.processed,
                                           "warnings": result.warnings, "closed": result.closed,
                                           "not_processed": [n for n, _ in result.skipped],
                                           "failed": [n for n, _ in result.failed]})
    return result
