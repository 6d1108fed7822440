"""Intake heartbeats: each SMTP listener's row says how its intake threads are; /healthz reads them.

The SMTP listeners and the web may run on different machines: the database is what they
share. A listener writes its row every few seconds and when an intake thread is restarted,
deletes it when it stops, and at start deletes the rows its predecessors on the same
address left behind (a process that was killed writes nothing more)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from gateway.domain.clock import format_instant
from store.models import IntakeHeartbeat

# A listener that has not written for this long is silent: killed, hung, or cut off from the
# database. It writes every 15 s (inbound.supervisor.HEARTBEAT): four beats missed.
SILENT_AFTER = timedelta(seconds=60)
# From good to bad; /healthz answers 503 for the last two.
STATES = ("ok", "restarted", "silent", "dead")
UNHEALTHY = ("silent", "dead")


@dataclass(frozen=True)
class Beat:
    """What one listener process reports about its intake threads."""

    listener: str  # host:port/pid
    address: str  # host:port
    started_at: datetime
    threads: int
    alive: int
    restarts: int
    restarted_at: datetime | None
    last_error: str


def record(session: Session, beat: Beat, now: datetime) -> None:
    """Write `beat` as its listener's row, stamped `now`."""
    row = session.get(IntakeHeartbeat, beat.listener)
    if row is None:
        row = IntakeHeartbeat(listener=beat.listener)
        session.add(row)
    row.address, row.started_at, row.beat_at = beat.address, beat.started_at, now
    row.threads, row.alive, row.restarts = beat.threads, beat.alive, beat.restarts
    row.restarted_at, row.last_error = beat.restarted_at, beat.last_error or None


def forget(session: Session, listener: str) -> None:
    """A listener that stops cleanly leaves no row."""
    session.execute(delete(IntakeHeartbeat).where(IntakeHeartbeat.listener == listener))


def forget_predecessors(session: Session, address: str, now: datetime) -> None:
    """Rows of listeners on `address` that have gone silent: processes this one replaces.
    Siblings sharing the port (several listener processes) are writing, and stay."""
    session.execute(delete(IntakeHeartbeat).where(
        IntakeHeartbeat.address == address, IntakeHeartbeat.beat_at < now - SILENT_AFTER))


def state_of(row: IntakeHeartbeat, now: datetime) -> str:
    if now - row.beat_at > SILENT_AFTER:
        return "silent"
    if row.alive < row.threads:
        return "dead"
    return "restarted" if row.restarts else "ok"


def report(session: Session, now: datetime) -> dict[str, Any] | None:
    """`{"intake": worst state, "listeners": [...]}`, or None when no listener reports."""
    # the IMAP mailboxes' rows (address `imap`) are gateway.services.imap_health's
    rows = session.scalars(select(IntakeHeartbeat).where(IntakeHeartbeat.address != "imap")
                           .order_by(IntakeHeartbeat.listener)).all()
    if not rows:
        return None
    listeners = [{
        "listener": row.listener, "state": state_of(row, now), "threads": row.threads,
        "alive": row.alive, "restarts": row.restarts,
        "restarted_at": format_instant(row.restarted_at),
        "last_error": row.last_error, "beat_at": format_instant(row.beat_at),
    } for row in rows]
    worst = max((entry["state"] for entry in listeners), key=STATES.index)
    return {"intake": worst, "listeners": listeners}
