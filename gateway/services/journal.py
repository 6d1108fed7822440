"""Writing the event log and the outbox rows a change causes, in the change's transaction."""

from __future__ import annotations

import base64
import secrets
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Insert, Table, bindparam, func, insert, inspect, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from gateway.domain.facts import Role
from gateway.services import mail_state
from gateway.services.context import Actor, ServiceContext
from store.models import Base, Counter, Event, Message, Order, OutboxMail, Ticket


def insert_row(session: Session, model: type[Base], values: dict[str, Any]) -> int:
    """Write one row now, through the table (no unit of work); returns its id.

    The history a change writes (events, messages, outbox rows) is only ever added to: each
    row goes straight to the database in the change's transaction, which costs a fraction
    of tracking it as an object until the flush (measured: about a quarter). A collection
    already loaded in the session is expired by the caller, so it reloads with the row."""
    statement = _INSERTS.get(model)
    if statement is None:  # built once a table: building costs more than the cache look-up
        statement = _INSERTS.setdefault(model, insert(table_of(model)))
    key = session.connection().execute(statement, values).inserted_primary_key
    assert key is not None
    return int(key[0])


_INSERTS: dict[type[Base], Insert] = {}


def write_columns(session: Session, model: type[Base], row_id: int,
                  values: dict[str, Any]) -> None:
    """Change columns of one row now, through the table (no unit of work). An object of the
    row already loaded in the session shows the values as its own, so it is never stale and
    leaves nothing for the flush; the caller makes sure none of these columns has a change
    of its own waiting for the flush."""
    table = table_of(model)
    session.connection().execute(update(table).where(table.c.id == row_id).values(values))
    obj = loaded(session, model, row_id)
    if obj is not None:
        for key, value in values.items():
            set_committed_value(obj, key, value)


def loaded(session: Session, model: type[Base], row_id: int) -> Base | None:
    """The object of this row when the session has it loaded."""
    found = session.identity_map.get(session.identity_key(model, row_id))
    return found if isinstance(found, model) else None


def table_of(model: type[Base]) -> Table:
    table = model.__table__
    assert isinstance(table, Table)
    return table


def forget(session: Session, obj: object | None, attribute: str) -> None:
    """Expire a loaded collection that a row was just written to behind the ORM's back."""
    if obj is not None and attribute in inspect(obj).dict:
        session.expire(obj, [attribute])


def record(session: Session, ctx: ServiceContext, actor: Actor, kind: str, *,
           ticket: Ticket | None = None, ticket_id: int | None = None,
           vendor_id: int | None = None, old: object = None, new: object = None,
           note: str | None = None) -> int:
    """One line of the event log, written at once; returns its id. The ticket is given as
    an object, or as its id (the object, when loaded, shows the line when read again)."""
    if ticket is not None:
        if ticket.id is None:
            session.flush()
        ticket_id = ticket.id
    if ticket_id is not None:
        forget(session, ticket or loaded(session, Ticket, ticket_id), "events")
    return insert_row(session, Event, event_values(ctx, actor, kind, ticket_id=ticket_id,
                                                   vendor_id=vendor_id, old=old, new=new,
                                                   note=note))


def event_values(ctx: ServiceContext, actor: Actor, kind: str, *, ticket_id: int | None,
                 vendor_id: int | None = None, old: object = None, new: object = None,
                 note: str | None = None) -> dict[str, Any]:
    """The columns of one event-log row."""
    return {
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
    }


def next_ticket_number(session: Session) -> int:
    # The UPDATE takes the row's write lock (PostgreSQL) or the database's (SQLite) until
    # commit, so two processes can never read the same value.
    session.execute(update(Counter).where(Counter.name == "ticket").values(value=Counter.value + 1))
    return int(session.execute(select(Counter.value).where(Counter.name == "ticket")).scalar_one())


def party_address(ticket_or_order: Ticket | Order, party: Role,
                  staff_email: str) -> tuple[str, str]:
    """(address, locale) a party of this ticket is mailed at."""
    order = ticket_or_order.order if isinstance(ticket_or_order, Ticket) else ticket_or_order
    return pick_address(party, (order.customer_email, order.locale),
                        (order.vendor.mail_address, order.vendor.locale), staff_email)


def pick_address(party: Role, customer: tuple[str, str], vendor: tuple[str, str],
                 staff_email: str) -> tuple[str, str]:
    """(address, locale) of `party`, given the customer's and the vendor's."""
    if party is Role.CUSTOMER:
        return customer
    if party is Role.VENDOR:
        return vendor
    return staff_email, "en"


def new_message_id(domain: str) -> str:
    """A Message-ID for one outbox row, fixed when the row is written: 128 random bits, so
    nobody can guess one (a delivery report quoting it is about our mail, SPEC 8) and two
    installs never share one (RFC 5322 section 3.6.4: unique for ever). Every retry and the
    threading headers of later mails use the stored value."""
    left = base64.b32encode(secrets.token_bytes(16)).decode("ascii").rstrip("=").lower()
    right = domain.strip().strip("<>@ ").lower() or "localhost"
    return f"<{left}@{right}>"


_INSERT_OUTBOX = insert(table_of(OutboxMail))
_NEWEST_MESSAGE = select(func.max(Message.__table__.c.id)).where(
    Message.__table__.c.ticket_id == bindparam("ticket_id"))


def notify(session: Session, ctx: ServiceContext, ticket: Ticket, event_name: str,
           parties: Iterable[Role] = (Role.CUSTOMER, Role.VENDOR), *,
           event: int | None = None, notice_kind: str | None = None,
           payload: dict[str, Any] | None = None, recipient: str | None = None,
           newest_message: int | None = None) -> None:
    """Outbox rows, one a recipient, written at once; the worker renders them from the
    history as of now (messages up to the newest one: `newest_message` when the caller just
    wrote it) and the ticket as it is now (`mail_state`): call it after the change."""
    write_outbox(session, ctx, ticket.id, ticket.order_id,
                 [(party, *party_address(ticket, party, ctx.staff_email)) for party in parties],
                 event_name, event=event,
                 upto=newest_message if newest_message is not None else newest(session, ticket),
                 notice_kind=notice_kind, recipient=recipient,
                 payload=mail_state.with_state(payload, mail_state.of_ticket(ticket, ctx.now)))


def newest(session: Session, ticket: Ticket) -> int | None:
    """The id of the ticket's newest message: what a mail about it shows up to."""
    if "messages" in inspect(ticket).dict:
        return max((m.id for m in ticket.messages if m.id is not None), default=None)
    if ticket.id is None:  # the same number without loading the ticket's whole history
        session.flush()
    found: int | None = session.connection().execute(
        _NEWEST_MESSAGE, {"ticket_id": ticket.id}).scalar()
    return found


def write_outbox(session: Session, ctx: ServiceContext, ticket_id: int, order_id: int,
                 parties: Iterable[tuple[Role, str, str]], event_name: str, *,
                 event: int | None, upto: int | None, notice_kind: str | None = None,
                 payload: dict[str, Any] | None = None, recipient: str | None = None) -> None:
    """The outbox rows of one change: one for each (party, address, locale)."""
    rows = outbox_values(ctx, ticket_id, order_id, parties, event_name, event=event, upto=upto,
                         notice_kind=notice_kind, payload=payload, recipient=recipient)
    if rows:
        session.connection().execute(_INSERT_OUTBOX, rows)


def outbox_values(ctx: ServiceContext, ticket_id: int, order_id: int,
                  parties: Iterable[tuple[Role, str, str]], event_name: str, *,
                  event: int | None, upto: int | None, notice_kind: str | None = None,
                  payload: dict[str, Any] | None = None,
                  recipient: str | None = None) -> list[dict[str, Any]]:
    """The columns of the outbox rows of one change."""
    return [{
        "ticket_id": ticket_id,
        "order_id": order_id,
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
        "message_id": new_message_id(ctx.mail_domain),
        "created_at": ctx.recorded_at,
        "next_attempt_at": ctx.recorded_at,
    } for party, address, locale in parties]


def notify_order(session: Session, ctx: ServiceContext, order: Order, event_name: str,
                 party: Role, *, recipient: str | None = None, notice_kind: str | None = None,
                 payload: dict[str, Any] | None = None) -> OutboxMail:
    """A mail that belongs to no ticket: receipt, sale, `Request Not Processed`."""
    address, locale = party_address(order, party, ctx.staff_email)
    row = OutboxMail(
        ticket_id=None, order_id=order.id, event=event_name, notice_kind=notice_kind,
        party=str(party), recipient=recipient or address, locale=locale, payload=payload,
        state="pending", attempts=0, message_id=new_message_id(ctx.mail_domain),
        created_at=ctx.recorded_at, next_attempt_at=ctx.recorded_at,
    )
    session.add(row)
    session.flush()
    return row
