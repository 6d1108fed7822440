"""The deadline processor: find due tickets by index, claim each atomically, act once.

Claiming: on PostgreSQL `FOR UPDATE SKIP LOCKED`, so any number of sweepers share the
work; on SQLite every transaction takes the write lock first (BEGIN IMMEDIATE), which
serialises sweepers. Acting changes `due_at` in the claiming transaction, so a ticket once
acted on is never due again for the same step — a second run, or a clock that jumped
backwards, finds nothing to do.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session, joinedload, sessionmaker

from gateway.domain import rules
from gateway.domain.facts import CloseReason, RefundKind, Role, Status, TicketType
from gateway.services import journal
from gateway.services.context import Actor, ServiceContext
from gateway.services.execution import RefundExecutor
from gateway.services.snapshots import order_facts, vendor_facts
from gateway.services.tickets import refresh_due
from store.db import is_postgres
from store.models import Event, Message, Order, OutboxMail, Ticket

log = logging.getLogger("ticketgw.deadlines")
SYSTEM = Actor(Role.SYSTEM, source="system")


@dataclass
class SweepResult:
    processed: int = 0
    warnings: int = 0
    closed: int = 0
    failed: list[tuple[int, str]] = field(default_factory=list)

    @property
    def total(self) -> int:
        return self.processed + self.warnings + self.closed


def due_query(at: datetime, limit: int, *, postgres: bool):  # type: ignore[no-untyped-def]
    query = (select(Ticket.id).where(Ticket.due_at <= at)
             .order_by(Ticket.due_at, Ticket.id).limit(limit))
    if postgres:
        query = query.with_for_update(skip_locked=True)
    return query


def next_deadline(session: Session) -> datetime | None:
    value: datetime | None = session.execute(select(func.min(Ticket.due_at))).scalar_one_or_none()
    return value


def run_due(sessions: sessionmaker[Session], make_ctx: Callable[[], ServiceContext],
            executor: RefundExecutor, *, batch: int = 200,
            progress: Callable[[SweepResult], None] | None = None) -> SweepResult:
    """Execute everything due at `make_ctx().now`; returns what was done.

    A batch of due tickets is acted on in one transaction and written in one flush. If one
    ticket fails, the whole batch rolls back (nothing of it is half done) and is run again
    without that ticket; a failure while writing runs the next batches one ticket at a
    time until the culprit is found. One bad ticket never stops the others.
    """
    result = SweepResult()
    skipped: set[int] = set()
    size = batch
    while True:
        ctx = make_ctx()
        done = SweepResult()
        current: int | None = None
        try:
            with sessions.begin() as session:
                query = due_query(ctx.now, size + len(skipped), postgres=is_postgres(session))
                ids = [i for i in session.execute(query).scalars() if i not in skipped][:size]
                if not ids:
                    return result
                history = History(_newest_messages(session, ids))
                for ticket in _load(session, ids):
                    current = ticket.id
                    _act_on(session, ctx, ticket, executor, done, history)
                current = None
                session.flush()
                history.write(session)
        except Exception as exc:  # one bad ticket never stops the others
            if current is None and size > 1:
                size = 1  # failed while writing: find the culprit one ticket at a time
                continue
            culprit = current if current is not None else ids[0]
            log.exception("deadline failed", extra={"ticket_id": culprit})
            skipped.add(culprit)
            result.failed.append((culprit, f"{type(exc).__name__}: {exc}"))
            continue
        size = batch
        result.processed += done.processed
        result.warnings += done.warnings
        result.closed += done.closed
        if progress is not None:
            progress(result)


def _load(session: Session, ids: list[int]) -> list[Ticket]:
    """The batch's tickets with what acting needs, in a handful of queries for all of them."""
    tickets = session.execute(
        select(Ticket).where(Ticket.id.in_(ids))
        # everything acting reads, for the whole batch at once: a lazy load in between would
        # flush each ticket on its own
        .options(joinedload(Ticket.order).selectinload(Order.payments))
        .execution_options(populate_existing=True)
    ).unique().scalars().all()
    return sorted(tickets, key=lambda t: (t.due_at or datetime.max.replace(tzinfo=UTC), t.id))


class History:
    """The event-log and outbox rows of one batch of deadlines, written at its end with two
    statements (events, then the mail about them) instead of two for each ticket: on
    PostgreSQL each statement is a round trip, and the sweep waited on them more than it
    worked (bench/outbound.py part (c))."""

    def __init__(self, newest: dict[int, int]) -> None:
        self.newest = newest  # each ticket's newest message id
        self.events: list[dict[str, object]] = []
        self.mails: list[tuple[int, list[dict[str, object]]]] = []  # (event's index, rows)

    def add(self, ctx: ServiceContext, ticket: Ticket, kind: str, mail: str,
            **event: object) -> None:
        """An event on `ticket` by the system, and mail about it to both parties."""
        self.events.append(journal.event_values(ctx, SYSTEM, kind, ticket_id=ticket.id,
                                                **event))  # type: ignore[arg-type]
        parties = [(party, *journal.party_address(ticket, party, ctx.staff_email))
                   for party in (Role.CUSTOMER, Role.VENDOR)]
        self.mails.append((len(self.events) - 1, journal.outbox_values(
            ctx, ticket.id, ticket.order_id, parties, mail, event=None,
            upto=self.newest.get(ticket.id))))

    def write(self, session: Session) -> None:
        if not self.events:
            return
        connection = session.connection()
        ids = connection.execute(
            insert(journal.table_of(Event)).returning(journal.table_of(Event).c.id,
                                                      sort_by_parameter_order=True),
            self.events).scalars().all()
        rows = [{**row, "event_id": ids[index]} for index, mail in self.mails for row in mail]
        if rows:
            connection.execute(insert(journal.table_of(OutboxMail)), rows)


def _newest_messages(session: Session, ids: list[int]) -> dict[int, int]:
    """Each ticket's newest message id, for the whole batch in one query: what the mail
    about a deadline shows the history up to."""
    rows = session.execute(select(Message.ticket_id, func.max(Message.id))
                           .where(Message.ticket_id.in_(ids)).group_by(Message.ticket_id))
    return {int(ticket_id): int(newest) for ticket_id, newest in rows}


def _act_on(session: Session, ctx: ServiceContext, ticket: Ticket, executor: RefundExecutor,
            result: SweepResult, history: History) -> None:
    if ticket.due_at is None or ticket.due_at > ctx.now:
        return
    if ticket.status != Status.OPEN.value:
        ticket.due_at, ticket.due_kind = None, None
        return
    kind = ticket.due_kind
    if kind == "process":
        execute(session, ctx, ticket, executor, history)
        result.processed += 1
    elif kind == "warning":
        ticket.warnings_sent += 1
        refresh_due(ctx, ticket)
        history.add(ctx, ticket, "inactivity_warning", "inactivity_warning",
                    new=str(ticket.warnings_sent))
        result.warnings += 1
    elif kind == "close":
        ticket.status = Status.CLOSED.value
        ticket.closed_at = ctx.now
        ticket.close_reason = CloseReason.INACTIVE.value
        refresh_due(ctx, ticket)
        history.add(ctx, ticket, "status", "closed", old="open", new="closed",
                    note=CloseReason.INACTIVE.value)
        result.closed += 1
    else:
        refresh_due(ctx, ticket)
    log.info("deadline acted", extra={"ticket": ticket.number, "kind": kind})


def execute(session: Session, ctx: ServiceContext, ticket: Ticket,
            executor: RefundExecutor, history: History) -> None:
    """Run a refund or cancellation: money first, then close (processed) and mail both."""
    order = ticket.order
    if ticket.type == TicketType.REFUND.value:
        kind = RefundKind(ticket.refund_kind or RefundKind.FULL.value)
        amount = rules.refund_amount(order_facts(order), kind, ticket.refund_value,
                                     vendor_facts(order.vendor))
        executor.refund(session, order, ticket, amount)
        ticket.refund_amount = amount
        note = f"{amount} {order.currency}"
    else:
        executor.cancel(session, order, ticket)
        note = "subscription cancelled"
    ticket.status = Status.CLOSED.value
    ticket.closed_at = ctx.now
    ticket.close_reason = CloseReason.PROCESSED.value
    ticket.due_at, ticket.due_kind = None, None
    history.add(ctx, ticket, "processed", "processed", old="open", new="closed",
                note=note)


