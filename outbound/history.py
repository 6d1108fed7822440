"""Read what one mail shows: its ticket and order, the messages up to its event, earlier mail.

Only the columns a mail shows, read with Core into plain dataclasses: a mail is rendered for
every change, and whole ORM objects (a message's original text and HTML included) cost more
than the render. The messages are read up to the one the mail reports (`upto_message_id`),
so a mail rendered late still shows the conversation as it was when the change happened;
the ticket's details as they were then come from the state written with the row
(`gateway.services.mail_state`, applied by `as_of`), and the change itself from its event.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields, replace
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol

from sqlalchemy import and_, bindparam, func, select
from sqlalchemy.orm import Session

from store.models import (
    Attachment,
    Event,
    Message,
    Order,
    OutboxMail,
    Payment,
    Product,
    Ticket,
    Vendor,
)


class OutboxFields(Protocol):
    """What composing reads of an outbox row: an `OutboxMail`, or the columns a claim returned."""

    @property
    def id(self) -> int: ...
    @property
    def ticket_id(self) -> int | None: ...
    @property
    def order_id(self) -> int | None: ...
    @property
    def upto_message_id(self) -> int | None: ...
    @property
    def event_id(self) -> int | None: ...
    @property
    def event(self) -> str: ...
    @property
    def notice_kind(self) -> str | None: ...
    @property
    def party(self) -> str: ...
    @property
    def recipient(self) -> str: ...
    @property
    def locale(self) -> str: ...
    @property
    def payload(self) -> dict[str, Any] | None: ...
    @property
    def message_id(self) -> str | None: ...


@dataclass(frozen=True)
class MailOrder:
    """An order as its mail shows it: product, amounts, the vendor's nickname and zone."""

    id: int
    receipt: str
    title: str
    sku: str
    quantity: int
    amount: Decimal
    currency: str
    purchased_at: datetime
    customer_name: str
    customer_email: str
    vendor: str  # the vendor's nickname
    zone: str  # the vendor's time zone
    refunded_amount: Decimal
    kind: str  # digital | physical
    recurring: bool
    vendor_address: str  # where the vendor reads mail: its customer-service address, else its own


@dataclass(frozen=True)
class MailTicket:
    """A ticket as its mail shows it (the columns are read by these field names)."""

    number: int
    type: str
    status: str
    created_at: datetime
    created_by: str
    reason: str | None
    problem: str | None
    refund_kind: str | None
    refund_amount: Decimal | None
    process_at: datetime | None
    closed_at: datetime | None
    close_reason: str | None
    escalated: bool
    escalation_note: str | None
    title: str | None  # the customer's own subject


@dataclass(frozen=True)
class MailAttachment:
    """An attachment as a mail lists it; its bytes are read only for the newest message."""

    id: int
    filename: str
    size: int
    content_type: str


@dataclass(frozen=True)
class MailComment:
    """One message of the ticket as a mail shows it: a comment and the files it came with."""

    id: int
    author_role: str
    author_email: str | None
    text: str
    created_at: datetime
    attachments: tuple[MailAttachment, ...]
    source: str = "web"  # email | web | api | cli | system
    message_id: str | None = None  # the Message-ID of the mail it came in
    verified: bool | None = None  # False: matched by subject token and From only


@dataclass(frozen=True)
class EarlierMail:
    """Another outbox row to the same recipient on the same ticket (caps, digests, threading)."""

    id: int
    message_id: str | None
    state: str
    next_attempt_at: datetime | None
    sent_at: datetime | None
    upto_message_id: int | None = None  # the newest message that mail showed
    in_flight: bool = False  # rendered and claimed, not yet sent: another worker sends it now


@dataclass(frozen=True)
class MailEvent:
    """The event a mail reports: who changed what, from what to what."""

    kind: str
    actor_role: str
    old: str | None
    new: str | None
    note: str | None


_TICKETS = Ticket.__table__
_ORDERS = Order.__table__
_VENDORS = Vendor.__table__
_PRODUCTS = Product.__table__
_MESSAGES = Message.__table__
_ATTACHMENTS = Attachment.__table__
_OUTBOX = OutboxMail.__table__
_EVENTS = Event.__table__
_PAYMENTS = Payment.__table__

_ORDER_COLUMNS = (
    _ORDERS.c.id, _ORDERS.c.receipt, _PRODUCTS.c.title, _PRODUCTS.c.sku, _ORDERS.c.quantity,
    _ORDERS.c.amount, _ORDERS.c.currency, _ORDERS.c.purchased_at, _ORDERS.c.customer_name,
    _ORDERS.c.customer_email, _VENDORS.c.nickname.label("vendor"),
    _VENDORS.c.timezone.label("zone"), _ORDERS.c.refunded_amount, _PRODUCTS.c.kind,
    _PRODUCTS.c.recurring,
    func.coalesce(_VENDORS.c.cs_email, _VENDORS.c.account_email).label("vendor_address"),
)
_ORDER_JOIN = (_ORDERS.join(_VENDORS, _VENDORS.c.id == _ORDERS.c.vendor_id)
               .join(_PRODUCTS, _PRODUCTS.c.id == _ORDERS.c.product_id))
_TICKET_COLUMNS = tuple(_TICKETS.c[f.name] for f in fields(MailTicket))
_SELECT_TICKET = (select(*_TICKET_COLUMNS, *_ORDER_COLUMNS)
                  .select_from(_TICKETS.join(_ORDER_JOIN, _ORDERS.c.id == _TICKETS.c.order_id))
                  .where(_TICKETS.c.id == bindparam("ticket_id")))
_SELECT_ORDER = select(*_ORDER_COLUMNS).select_from(_ORDER_JOIN).where(
    _ORDERS.c.id == bindparam("order_id"))
_SELECT_HISTORY = (
    select(_MESSAGES.c.id, _MESSAGES.c.author_role, _MESSAGES.c.author_email, _MESSAGES.c.text,
           _MESSAGES.c.created_at, _MESSAGES.c.source, _MESSAGES.c.message_id,
           _MESSAGES.c.verified, _ATTACHMENTS.c.id.label("attachment_id"),
           _ATTACHMENTS.c.filename, _ATTACHMENTS.c.size, _ATTACHMENTS.c.content_type)
    .select_from(_MESSAGES.outerjoin(_ATTACHMENTS,
                                     _ATTACHMENTS.c.message_id == _MESSAGES.c.id))
    .where(_MESSAGES.c.ticket_id == bindparam("ticket_id"),
           _MESSAGES.c.id <= bindparam("upto"))
    .order_by(_MESSAGES.c.id, _ATTACHMENTS.c.id))
_SELECT_EVENT = select(_EVENTS.c.kind, _EVENTS.c.actor_role, _EVENTS.c.old, _EVENTS.c.new,
                       _EVENTS.c.note).where(_EVENTS.c.id == bindparam("id"))
_SELECT_LATEST_BILL = (select(_PAYMENTS.c.at, _PAYMENTS.c.amount)
                       .where(_PAYMENTS.c.order_id == bindparam("order_id"))
                       .order_by(_PAYMENTS.c.at.desc(), _PAYMENTS.c.id.desc()).limit(1))
# what a snapshot replaces: every field but the number and the creation, which never change
_SNAPSHOT_FIELDS = tuple(f.name for f in fields(MailTicket)
                         if f.name not in ("number", "created_at"))
_SELECT_EARLIER = (
    select(_OUTBOX.c.id, _OUTBOX.c.message_id, _OUTBOX.c.state, _OUTBOX.c.next_attempt_at,
           _OUTBOX.c.sent_at, _OUTBOX.c.upto_message_id,
           and_(_OUTBOX.c.state == "pending", _OUTBOX.c.raw.isnot(None)))
    .where(_OUTBOX.c.ticket_id == bindparam("ticket_id"),
           _OUTBOX.c.recipient == bindparam("recipient"), _OUTBOX.c.id != bindparam("id"))
    .order_by(_OUTBOX.c.id))


def load_subject(session: Session, ticket_id: int | None, order_id: int | None
                 ) -> tuple[MailTicket | None, MailOrder | None]:
    """The ticket (with its order), or only the order, a mail is about."""
    if ticket_id is not None:
        found = session.execute(_SELECT_TICKET, {"ticket_id": ticket_id}).first()
        if found is not None:
            split = len(_TICKET_COLUMNS)
            return MailTicket(*found[:split]), MailOrder(*found[split:])
    if order_id is None:
        return None, None
    found = session.execute(_SELECT_ORDER, {"order_id": order_id}).first()
    return None, (MailOrder(*tuple(found)) if found is not None else None)


def load_history(session: Session, ticket_id: int | None, upto: int | None
                 ) -> list[MailComment]:
    """The ticket's messages up to `upto`, oldest first, with their attachments (no bytes)."""
    if ticket_id is None or upto is None:
        return []
    messages: list[MailComment] = []
    for (mid, role, email, text, at, source, message_id, verified, aid, filename, size,
         ctype) in session.execute(_SELECT_HISTORY, {"ticket_id": ticket_id, "upto": upto}):
        if not messages or messages[-1].id != mid:
            messages.append(MailComment(mid, role, email, text, at, (), source, message_id,
                                        verified))
        if aid is not None:
            last = messages[-1]
            messages[-1] = replace(last, attachments=(
                *last.attachments, MailAttachment(aid, filename, size, ctype)))
    return messages


def attachment_data(session: Session, message_id: int) -> dict[int, bytes | None]:
    """The bytes of one message's attachments by id (None: stored without, over the limit)."""
    rows = session.execute(select(_ATTACHMENTS.c.id, _ATTACHMENTS.c.data)
                           .where(_ATTACHMENTS.c.message_id == message_id))
    return {aid: data for aid, data in rows}


def mail_to_recipient(session: Session, row: OutboxFields) -> list[EarlierMail]:
    """The other outbox rows of this row's ticket to this row's recipient, oldest first."""
    if row.ticket_id is None:
        return []
    return [EarlierMail(*r) for r in session.execute(
        _SELECT_EARLIER, {"ticket_id": row.ticket_id, "recipient": row.recipient, "id": row.id})]


def load_event(session: Session, event_id: int | None) -> MailEvent | None:
    """The event a mail reports (None for a mail written without one)."""
    if event_id is None:
        return None
    found = session.execute(_SELECT_EVENT, {"id": event_id}).first()
    return MailEvent(*tuple(found)) if found is not None else None


def latest_bill(session: Session, order_id: int) -> tuple[datetime, Decimal] | None:
    """(instant, amount) of a recurring order's most recent bill: its refund window's start."""
    found = session.execute(_SELECT_LATEST_BILL, {"order_id": order_id}).first()
    return (found[0], found[1]) if found is not None else None


def as_of(ticket: MailTicket, order: MailOrder, columns: Mapping[str, Any],
          refunded_amount: Decimal) -> tuple[MailTicket, MailOrder]:
    """The ticket and order as a snapshot (`gateway.services.mail_state`) recorded them."""
    changed = {name: columns[name] for name in _SNAPSHOT_FIELDS if name in columns}
    return (replace(ticket, **changed),
            replace(order, refunded_amount=refunded_amount))


def held_events(session: Session, ids: Sequence[int]) -> list[str]:
    """The events of the held rows a digest carries, oldest first."""
    return list(session.execute(
        select(OutboxMail.event).where(OutboxMail.id.in_(list(ids))).order_by(OutboxMail.id)
    ).scalars())
