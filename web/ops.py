"""Operator endpoints: `/healthz` (database, broker, SMTP intake) and `/metrics` (Prometheus)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from typing import Any

import anyio
import anyio.to_thread
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import Engine, func, select, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import InstrumentedAttribute, Session
from sqlalchemy.sql import ColumnElement
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gateway.services import imap_health, metrics
from gateway.services.deadlines import next_deadline
from gateway.services.intake_health import UNHEALTHY, report
from gateway.services.runtime import Runtime
from store.models import OutboxMail, Ticket
from web.pages import Web

log = logging.getLogger("ticketgw.web")

CHECK_SECONDS = 5.0  # a check that has not answered by then counts as failed
PROMETHEUS_TYPE = "text/plain; version=0.0.4; charset=utf-8"
TICKET_TYPES = ("refund", "cancellation", "tech_support")
OUTBOX_STATES = ("pending", "deferred", "failed")


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


class DatabaseGauges(Collector):
    """What the database says at scrape time, by cheap queries only: open tickets, outbox
    rows waiting or failed (the state index), the deadlines overdue and the next one (the
    due-time index). Delivered mail is counted as it goes (`ticketgw_deliveries_total`), not
    by counting a table that only grows."""

    def __init__(self, runtime: Runtime, now: datetime) -> None:
        self.runtime = runtime
        self.now = now

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("ticketgw_database_up",
                               "1 when the database answered this scrape's queries.")
        try:
            with self.runtime.sessions() as session:
                open_tickets = _counts(session, Ticket.type, Ticket.status == "open")
                outbox = _counts(session, OutboxMail.state,
                                 OutboxMail.state.in_(OUTBOX_STATES))
                overdue = session.execute(
                    select(func.count()).where(Ticket.due_at <= self.now)).scalar_one()
                deadline = next_deadline(session)
        except (SQLAlchemyError, OSError):
            # the counts of mail answered 451 meanwhile matter most now: they still go out
            log.warning("metrics: the database did not answer", exc_info=True)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield _family("ticketgw_open_tickets", "Open tickets by type.", "type", open_tickets,
                      TICKET_TYPES)
        yield _family("ticketgw_outbox_mails", "Outbound mails waiting (pending, deferred by "
                      "the notification cap) or given up (failed).", "state", outbox,
                      OUTBOX_STATES)
        yield GaugeMetricFamily("ticketgw_deadlines_overdue",
                                "Deadlines whose time has passed and that no sweep has run yet.",
                                value=int(overdue))
        next_in = GaugeMetricFamily(
            "ticketgw_next_deadline_seconds",
            "Seconds until the earliest deadline (negative when overdue; absent when none).")
        if deadline is not None:
            next_in.add_metric([], round((deadline - self.now).total_seconds()))
        yield next_in


def _family(name: str, help_text: str, label: str, counts: dict[str, int],
            known: Iterable[str]) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, help_text, labels=[label])
    for key in sorted(set(known) | set(counts)):
        family.add_metric([key], counts.get(key, 0))
    return family


def _counts(session: Session, column: InstrumentedAttribute[str],
            *where: ColumnElement[bool]) -> dict[str, int]:
    rows = session.execute(select(column, func.count()).where(*where).group_by(column)).all()
    return {str(key): int(count) for key, count in rows}


def metrics_text(runtime: Runtime, now: datetime) -> bytes:
    """Every process's counts (gateway.services.metrics), then the database's gauges."""
    return metrics.scrape(DatabaseGauges(runtime, now))


async def _intake(web: Web) -> dict[str, Any] | None:
    """The SMTP listeners' intake threads as their heartbeat rows say (None: no listener
    reports, or the rows cannot be read)."""
    def read() -> dict[str, Any] | None:
        with web.runtime.sessions() as session:
            return report(session, web.now())

    with anyio.move_on_after(CHECK_SECONDS):
        try:
            return await anyio.to_thread.run_sync(read, abandon_on_cancel=True)
        except SQLAlchemyError:
            return None
    return None


async def _read(web: Web, report_of: Callable[[Session, datetime], dict[str, Any] | None]
                ) -> dict[str, Any] | None:
    """A health report read from the database (None: nothing reports, or no answer)."""
    def read() -> dict[str, Any] | None:
        with web.runtime.sessions() as session:
            return report_of(session, web.now())

    with anyio.move_on_after(CHECK_SECONDS):
        try:
            return await anyio.to_thread.run_sync(read, abandon_on_cancel=True)
        except SQLAlchemyError:
            return None
    return None


def routes(web: Web) -> list[Route]:
    async def healthz(request: Request) -> Response:
        database = await _within(lambda: database_answers(web.runtime.engine))
        broker = await _within(web.broker_check)
        body: dict[str, Any] = {"database": "ok" if database else "unavailable",
                                "broker": "ok" if broker else "unavailable"}
        intake = await _intake(web) if database else None
        body.update(intake or {})
        mailboxes = await _read(web, imap_health.report) if database else None
        body.update(mailboxes or {})
        healthy = (database and broker and (intake is None or intake["intake"] not in UNHEALTHY)
                   and (mailboxes is None or mailboxes["imap"] == "ok"))
        return JSONResponse(body, status_code=200 if healthy else 503)

    async def metrics(request: Request) -> Response:
        body = await web.run(metrics_text, web.runtime, web.now())
        return Response(body, media_type=PROMETHEUS_TYPE)

    return [Route("/healthz", healthz, methods=["GET"]),
            Route("/metrics", metrics, methods=["GET"])]
