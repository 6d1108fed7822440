"""The deadline processor: find due tickets by index, claim each atomically, act once.

Claiming: on PostgreSQL `FOR UPDATE SKIP LOCKED`, so any number of sweepers share the
work; on SQLite every transaction takes the write lock first (BEGIN IMMEDIATE), which
serialises sweepers. Acting changes `due_at` in the claiming transaction, so a ticket once
acted on is never due again for the same step — a second run, or a clock that jumped
backwards, finds nothing to do.

A refund or cancellation that can no longer execute when due (the order was refunded in
full, or the subscription cancelled, meanwhile) is not retried at every sweep and not
"processed" a second time: its deadline is cleared, the event log says why
(`not_processed`), and the ticket is escalated to staff, who decide what is left to do.
Every report names tickets by their number (#1042), as people know them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session, joinedload, sessionmaker

from gateway.domain import rules
from gateway.domain.errors import UserError
from gateway.domain.facts import CloseReason, RefundKind, Role, Status, TicketType
from gateway.services import journal, mail_state, support
from gateway.services.context import Actor, ServiceContext
from gateway.services.execution import RefundExecutor
from gateway.services.snapshots import order_facts, vendor_facts
from gateway.services.tickets import refresh_due, set_deadline
from store.db import is_postgres
from store.models import Event, Message, Order, OutboxMail, Ticket

log = logging.getLogger("ticketgw.deadlines")
SYSTEM = Actor(Role.SYSTEM, source="system")


@dataclass
class SweepResult:
    processed: int = 0
    warnings: int = 0
    closed: int = 0
    # (ticket number, why): requests that could no longer execute, escalated to staff
    skipped: list[tuple[int, str]] = field(default_factory=list)
    failed: list[tuple[int, str]] = field(default_factory=list)  # (ticket number, error)

    @property
    def total(self) -> int:
        return self.processed + self.warnings + self.closed + len(self.skipped)


def due_query(at: datetime, limit: int, *, postgres: bool):  # type: ignore[no-untyped-def]
    """(id, number) of the due tickets, earliest first: the number names a failure."""
    query = (select(Ticket.id, Ticket.number).where(Ticket.due_at <= at)
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
    numbers: dict[int, int] = {}  # id -> number of the tickets seen: failures name the number
    size = batch
    while True:
        ctx = make_ctx()
        done = SweepResult()
        current: int | None = None
        try:
            with sessions.begin() as session:
                query = due_query(ctx.now, size + len(skipped), postgres=is_postgres(session))
                due = [(i, n) for i, n in session.execute(query).all() if i not in skipped]
                numbers.update(due[:size])
                ids = [i for i, _ in due[:size]]
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
            log.exception("deadline failed on ticket #%s", numbers[culprit],
                          extra={"ticket": numbers[culprit]})
            skipped.add(culprit)
            result.failed.append((numbers[culprit], f"{type(exc).__name__}: {exc}"))
            continue
        size = batch
        result.processed += done.processed
        result.warnings += done.warnings
        result.closed += done.closed
        result.skipped += done.skipped
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

    def add(self, ctx: ServiceContext, ticket: Ticket, kind: str, mail: str | None,
            parties: tuple[Role, ...] = (Role.CUSTOMER, Role.VENDOR),
            payload: dict[str, Any] | None = None, **event: object) -> None:
        """An event on `ticket` by the system, and mail about it to `parties` (none when
        `mail` is None) with `payload` for its template."""
        self.events.append(journal.event_values(ctx, SYSTEM, kind, ticket_id=ticket.id,
                                                **event))  # type: ignore[arg-type]
        if mail is None:
            return
        addresses = [(party, *journal.party_address(ticket, party, ctx.staff_email))
                     for party in parties]
        self.mails.append((len(self.events) - 1, journal.outbox_values(
            ctx, ticket.id, ticket.order_id, addresses, mail, event=None,
            upto=self.newest.get(ticket.id),
            payload=mail_state.with_state(payload, mail_state.of_ticket(ticket, ctx.now)))))

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
        refused = execute(session, ctx, ticket, executor, history)
        if refused is None:
            result.processed += 1
        else:
            result.skipped.append((ticket.number, refused))
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
            executor: RefundExecutor, history: History) -> str | None:
    """Run a refund or cancellation: money first, then close (processed) and mail both.
    Returns None, or why it could no longer run (then `not_executed` has dealt with it)."""
    order = ticket.order
    ticket_type = TicketType(ticket.type)
    try:  # checked again: the order may have changed since the deadline was set
        rules.check_executable(ticket_type, order_facts(order))
        amount = None if ticket_type is not TicketType.REFUND else rules.refund_amount(
            order_facts(order), RefundKind(ticket.refund_kind or RefundKind.FULL.value),
            ticket.refund_value, vendor_facts(order.vendor))
    except UserError as exc:
        not_executed(ctx, ticket, exc.message, history)
        return exc.message
    ended: list[support.EndedLine] = []
    if amount is not None:
        executor.refund(session, order, ticket, amount)
        ticket.refund_amount = amount
        if ctx.policy.refund_ends_support:
            ended = support.end_with_product(session, executor, order, ticket)
        note = f"{amount} {order.currency}" + "".join(
            f" + {line.amount:.2f} {line.currency} ({line.receipt})" for line in ended)
    else:
        executor.cancel(session, order, ticket)
        note = "subscription cancelled"
    ticket.status = Status.CLOSED.value
    ticket.closed_at = ctx.now
    ticket.close_reason = CloseReason.PROCESSED.value
    ticket.due_at, ticket.due_kind = None, None
    for line in ended:  # the subscriptions the product's refund ended (SPEC 7, addons)
        history.add(ctx, ticket, "support_refunded", None, old=line.receipt,
                    new=f"{line.amount:.2f}", note=line.currency)
    history.add(ctx, ticket, "processed", "processed", old="open", new="closed",
                note=note, payload={"support_refunds": [line.as_json() for line in ended]}
                if ended else None)
    return None


def not_executed(ctx: ServiceContext, ticket: Ticket, why: str, history: History) -> None:
    """A due request that can no longer run: no deadline any more (so no sweep fails on it
    again), the reason in the event log, and staff brought in with the reason as the
    escalation's explanation (the parties are told it was escalated, not processed)."""
    set_deadline(ticket, None)
    ticket.due_at, ticket.due_kind = None, None
    log.warning("ticket #%s not processed: %s", ticket.number, why,
                extra={"ticket": ticket.number})
    history.add(ctx, ticket, "not_processed", None, old=ticket.type, note=why)
    if ticket.escalated:
        return
    ticket.escalated = True
    ticket.escalation_note = f"the {ticket.type} request could not be processed: {why}"
    history.add(ctx, ticket, "escalated", "escalated",
                (Role.CUSTOMER, Role.VENDOR, Role.STAFF), old="false", new="true",
                note=ticket.escalation_note)


