"""Operator endpoints: `/healthz` (database and broker) and `/metrics` (Prometheus text)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime

import anyio
import anyio.to_thread
from sqlalchemy import Engine, func, select, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import InstrumentedAttribute, Session
from sqlalchemy.sql import ColumnElement
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from gateway.services.deadlines import next_deadline
from gateway.services.runtime import Runtime
from store.models import InboundMail, OutboxMail, Ticket
from web.pages import Web

CHECK_SECONDS = 5.0  # a check that has not answered by then counts as failed
PROMETHEUS_TYPE = "text/plain; version=0.0.4; charset=utf-8"
TICKET_TYPES = ("refund", "cancellation", "tech_support")
OUTBOX_STATES = ("pending", "sent", "failed", "deferred")
INBOUND_STATES = ("applied", "ignored", "rejected", "failed")


def database_answers(engine: Engine) -> bool:
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except (SQLAlchemyError, OSError):
        return False
    return True


def _safe(check: Callable[[], bool]) -> Callable[[], bool]:
    def run() -> bool:
        try:
            return bool(check())
        except Exception:  # a health check reports a fault; it never raises one
            return False
    return run


async def _within(check: Callable[[], bool]) -> bool:
    """Run a blocking check in a thread; no answer within CHECK_SECONDS is a failure."""
    with anyio.move_on_after(CHECK_SECONDS):
        return await anyio.to_thread.run_sync(_safe(check), abandon_on_cancel=True)
    return False


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _family(name: str, help_text: str, label: str, counts: dict[str, int],
            known: Iterable[str]) -> list[str]:
    lines = [f"# HELP {name} {help_text}", f"# TYPE {name} gauge"]
    for key in sorted(set(known) | set(counts)):
        lines.append(f'{name}{{{label}="{_escape(key)}"}} {counts.get(key, 0)}')
    return lines


def _counts(session: Session, column: InstrumentedAttribute[str],
            *where: ColumnElement[bool]) -> dict[str, int]:
    rows = session.execute(select(column, func.count()).where(*where).group_by(column)).all()
    return {str(key): int(count) for key, count in rows}


def metrics_text(runtime: Runtime, now: datetime) -> str:
    with runtime.sessions() as session:
        open_tickets = _counts(session, Ticket.type, Ticket.status == "open")
        outbox = _counts(session, OutboxMail.state)
        inbound = _counts(session, InboundMail.state)
        deadline = next_deadline(session)
    lines = [
        *_family("ticketgw_open_tickets", "Open tickets by type.", "type", open_tickets,
                 TICKET_TYPES),
        *_family("ticketgw_outbox_mails", "Outbound mails by state.", "state", outbox,
                 OUTBOX_STATES),
        *_family("ticketgw_inbound_mails", "Inbound mails by the state of their decision.",
                 "state", inbound, INBOUND_STATES),
        "# HELP ticketgw_next_deadline_seconds Seconds until the earliest deadline "
        "(negative when overdue; absent when there is none).",
        "# TYPE ticketgw_next_deadline_seconds gauge",
    ]
    if deadline is not None:
        lines.append(f"ticketgw_next_deadline_seconds {(deadline - now).total_seconds():.0f}")
    return "\n".join(lines) + "\n"


def routes(web: Web) -> list[Route]:
    async def healthz(request: Request) -> Response:
        database = await _within(lambda: database_answers(web.runtime.engine))
        broker = await _within(web.broker_check)
        body = {"database": "ok" if database else "unavailable",
                "broker": "ok" if broker else "unavailable"}
        return JSONResponse(body, status_code=200 if database and broker else 503)

    async def metrics(request: Request) -> Response:
        try:
            body = await web.run(metrics_text, web.runtime, web.now())
        except SQLAlchemyError:
            return PlainTextResponse("# the database is unavailable\n", status_code=503)
        return PlainTextResponse(body, media_type=PROMETHEUS_TYPE)

    return [Route("/healthz", healthz, methods=["GET"]),
            Route("/metrics", metrics, methods=["GET"])]
