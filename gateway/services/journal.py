"""Writing the event log and the outbox rows a change causes, in the change's transaction."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Table, bindparam, func, insert, inspect, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from gateway.domain.facts import Role
from gateway.services.context import Actor, ServiceContext
from store.models import Base, Counter, Event, Message, Order, OutboxMail, Ticket


def insert_row(session: Session, model: type[Base], values: dict[str, Any]) -> int:
    """Write one row now, through the table (no unit of work); returns its id.

    The history a change writes (events, messages, outbox rows) is only ever added to: each
    row goes straight to the database in the change's transaction, which costs a fraction
    of tracking it as an object until the flush (measured: about a quarter). A collection
    already loaded in the session is expired by the caller, so it reloads with the row."""
    key = session.connection().execute(insert(table_of(model)), values).inserted_primary_key
    assert key is not None
    return int(key[0])


def write_columns(session: Session, obj: Base, values: dict[str, Any]) -> None:
    """Change columns of a loaded row now, through the table; the object shows the values
    as its own (nothing left for the flush). The caller makes sure none of these columns
    has a change of its own waiting for the flush."""
    state = inspect(obj)
    identity = state.identity
    assert identity is not None, "only a row already in the database"
    where = (column == identity[i] for i, column in enumerate(state.mapper.primary_key))
    session.connection().execute(update(table_of(type(obj))).where(*where).values(values))
    for key, value in values.items():
        set_committed_value(obj, key, value)


def table_of(model: type[Base]) -> Table:
    table = model.__table__
    assert isinstance(table, Table)
    return table


def forget(session: Session, obj: object, attribute: str) -> None:
    """Expire a loaded collection that a row was just written to behind the ORM's back."""
    if attribute in inspect(obj).dict:
        session.expire(obj, [attribute])


def record(session: Session, ctx: ServiceContext, actor: Actor, kind: str, *,
           ticket: Ticket | None = None, vendor_id: int | None = None,
           old: object = None, new: object = None, note: str | None = None) -> int:
    """One line of the event log, written at once; returns its id."""
    ticket_id = None
    if ticket is not None:
        if ticket.id is None:
            session.flush()
        ticket_id = ticket.id
        forget(session, ticket, "events")
    return insert_row(session, Event, {
        "ticket_id": ticket_id,
        "vendor_id": vendor_id,
        "at": ctx.now,
        "recorded_at": ctx.recorded_at,
        "actor_role": str(actor.role),
        "actor_email": actor.email,
        "kind": kind,
        "old": None if old is None else str(old),
        "new": None if new is None else str(new),
        "note": note,
    })


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


_NEWEST_MESSAGE = select(func.max(Message.__table__.c.id)).where(
    Message.__table__.c.ticket_id == bindparam("ticket_id"))


def notify(session: Session, ctx: ServiceContext, ticket: Ticket, event_name: str,
           parties: Iterable[Role] = (Role.CUSTOMER, Role.VENDOR), *,
           event: int | None = None, notice_kind: str | None = None,
           payload: dict[str, Any] | None = None, recipient: str | None = None,
           newest_message: int | None = None) -> None:
    """Outbox rows, one a recipient, written at once; the worker renders them from the
    history as of now (messages up to the newest one: `newest_message` when the caller just
    wrote it)."""
    if newest_message is not None:
        upto: int | None = newest_message
    elif "messages" in inspect(ticket).dict:
        upto = max((m.id for m in ticket.messages if m.id is not None), default=None)
    else:  # the same number without loading the ticket's whole history
        if ticket.id is None:
            session.flush()
        upto = session.connection().execute(_NEWEST_MESSAGE, {"ticket_id": ticket.id}).scalar()
    rows = []
    for party in parties:
        address, locale = party_address(ticket, party, ctx.staff_email)
        rows.append({
            "ticket_id": ticket.id,
            "order_id": ticket.order_id,
            "event_id": event,
            "upto_message_id": upto,
            "event": event_name,
            "notice_kind": notice_kind,
            "party": str(party),
            "recipient": recipient or address,
            "locale": locale,
            "payload": payload,
            "state": "pending",
            "attempts": 0,
            "created_at": ctx.recorded_at,
            "next_attempt_at": ctx.recorded_at,
        })
    if rows:
        session.connection().execute(insert(table_of(OutboxMail)), rows)


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
