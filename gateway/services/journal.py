"""Writing the event log and the outbox rows a change causes, in the change's transaction."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import func, inspect, select, update
from sqlalchemy.orm import Session

from gateway.domain.facts import Role
from gateway.services.context import Actor, ServiceContext
from store.models import Counter, Event, Message, Order, OutboxMail, Ticket


def record(session: Session, ctx: ServiceContext, actor: Actor, kind: str, *,
           ticket: Ticket | None = None, vendor_id: int | None = None,
           old: object = None, new: object = None, note: str | None = None) -> Event:
    event = Event(
        vendor_id=vendor_id,
        at=ctx.now,
        recorded_at=ctx.recorded_at,
        actor_role=str(actor.role),
        actor_email=actor.email,
        kind=kind,
        old=None if old is None else str(old),
        new=None if new is None else str(new),
        note=note,
    )
    if ticket is not None and "events" in inspect(ticket).dict:
        ticket.events.append(event)  # keep a loaded collection in step
    else:
        # without loading the ticket's whole history: set the key (flushed tickets have ids)
        if ticket is not None:
            if ticket.id is None:
                session.flush()
            event.ticket_id = ticket.id
        session.add(event)
    return event


def next_ticket_number(session: Session) -> int:
    # The UPDATE takes the row's write lock (PostgreSQL) or the database's (SQLite) until
    # commit, so two processes can never read the same value.
    session.execute(update(Counter).where(Counter.name == "ticket").values(value=Counter.value + 1))
    return int(session.execute(select(Counter.value).where(Counter.name == "ticket")).scalar_one())


def party_address(ticket_or_order: Ticket | Order, party: Role,
                  staff_email: str) -> tuple[str, str]:
    """(address, locale) a party of this ticket is mailed at."""
    order = ticket_or_order.order if isinstance(ticket_or_order, Ticket) else ticket_or_order
    if party is Role.CUSTOMER:
        return order.customer_email, order.locale
    if party is Role.VENDOR:
        return order.vendor.mail_address, order.vendor.locale
    return staff_email, "en"


def notify(session: Session, ctx: ServiceContext, ticket: Ticket, event_name: str,
           parties: Iterable[Role] = (Role.CUSTOMER, Role.VENDOR), *,
           event: Event | None = None, notice_kind: str | None = None,
           payload: dict[str, Any] | None = None, recipient: str | None = None) -> list[OutboxMail]:
    """Outbox rows, one a recipient; the worker renders them from the history as of now."""
    # the newest message of this ticket written in this change, when there is one: the mail
    # shows history up to it (set through the relationship, one flush writes both)
    fresh = [m for m in session.new
             if isinstance(m, Message) and (m.ticket is ticket or m.ticket_id == ticket.id)]
    upto: int | None = None
    newest: Message | None = None
    if len(fresh) == 1:
        newest = fresh[0]
    elif fresh:  # several: ids tell which is newest
        session.flush()
        upto = max(m.id for m in fresh)
    elif "messages" in inspect(ticket).dict:
        upto = max((m.id for m in ticket.messages if m.id is not None), default=None)
    else:  # the same number without loading the ticket's whole history
        upto = session.execute(
            select(func.max(Message.id)).where(Message.ticket_id == ticket.id)).scalar()
    rows = []
    for party in parties:
        address, locale = party_address(ticket, party, ctx.staff_email)
        row = OutboxMail(
            ticket_id=ticket.id,
            order_id=ticket.order_id,
            event_row=event,
            upto_message_id=upto,
            event=event_name,
            notice_kind=notice_kind,
            party=str(party),
            recipient=recipient or address,
            locale=locale,
            payload=payload,
            state="pending",
            attempts=0,
            created_at=ctx.recorded_at,
            next_attempt_at=ctx.recorded_at,
        )
        if newest is not None:  # (set to None, the relationship would clear the id)
            row.upto_message = newest
        session.add(row)
        rows.append(row)
    return rows


def notify_order(session: Session, ctx: ServiceContext, order: Order, event_name: str,
                 party: Role, *, recipient: str | None = None, notice_kind: str | None = None,
                 payload: dict[str, Any] | None = None) -> OutboxMail:
    """A mail that belongs to no ticket: receipt, sale, `Request Not Processed`."""
    address, locale = party_address(order, party, ctx.staff_email)
    row = OutboxMail(
        ticket_id=None, order_id=order.id, event=event_name, notice_kind=notice_kind,
        party=str(party), recipient=recipient or address, locale=locale, payload=payload,
        state="pending", attempts=0, created_at=ctx.recorded_at, next_attempt_at=ctx.recorded_at,
    )
    session.add(row)
    session.flush()
    return row
