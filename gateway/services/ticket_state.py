"""Ticket state shared by opening and by every action: lookups, deadlines, messages."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Result, Select, bindparam, inspect, select
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from gateway.domain import rules
from gateway.domain.errors import NotFound
from gateway.domain.facts import (
    DeadlineRule,
    RefundKind,
    Role,
    Status,
    TicketType,
)
from gateway.domain.reasons import check_code
from gateway.domain.texts import _
from gateway.services import journal, reply_texts, standing
from gateway.services.context import Actor, ServiceContext, StoredAttachment
from gateway.services.snapshots import TicketLike, order_facts, vendor_facts
from store.db import is_postgres
from store.models import Attachment, Message, Order, Ticket, Vendor

REQUEST_TYPES = (TicketType.REFUND.value, TicketType.CANCELLATION.value)


def find_order(session: Session, receipt: str) -> Order:
    order = session.execute(
        select(Order).where(Order.receipt == receipt.strip().upper())
    ).scalar_one_or_none()
    if order is None:
        raise NotFound(_("no order with receipt %(receipt)s; check the receipt number",
                         receipt=repr(receipt)))
    return order


MAX_NUMBER = 2**31 - 1  # ticket numbers are a 32-bit integer column


class ByNumber:
    """The look-up of one ticket by its number, built once for a select whose WHERE binds
    `number`: with `lock`, the ticket's row stays locked until the transaction ends (on
    PostgreSQL; SQLite's writers take turns anyway). A number beyond the column's range is
    no ticket, not a database error."""

    def __init__(self, query: Select[Any], *, orm: bool = True) -> None:
        self.query = query
        self.locked = query.with_for_update(of=Ticket)
        self.orm = orm  # False: plain rows through the connection, without the ORM's work

    def __call__(self, session: Session, number: int, *, lock: bool) -> Result[Any] | None:
        if not 0 < number <= MAX_NUMBER:
            return None
        query = self.locked if lock and is_postgres(session) else self.query
        if self.orm:
            return session.execute(query, {"number": number})
        return session.connection().execute(query, {"number": number})


# built once: every action and every reply looks its ticket up
_TICKET_BY_NUMBER = ByNumber(select(Ticket).where(Ticket.number == bindparam("number")))


def find_ticket(session: Session, number: int, *, lock: bool = False) -> Ticket:
    result = _TICKET_BY_NUMBER(session, number, lock=lock)
    ticket: Ticket | None = (result.unique().scalar_one_or_none() if result is not None
                             else None)
    if ticket is None:
        raise NotFound(_("no ticket #%(n)s", n=number))
    return ticket


def _side(role: Role) -> Role:
    """Staff count on the vendor's side for inactivity."""
    return Role.CUSTOMER if role is Role.CUSTOMER else Role.VENDOR


def vendor_zone(ticket: Ticket) -> str:
    return ticket.order.vendor.timezone


def set_deadline(ticket: Ticket, deadline: rules.Deadline | None) -> None:
    if deadline is None:
        ticket.process_rule = None
        ticket.clock_started_at = None
        ticket.process_at = None
    else:
        ticket.process_rule = deadline.rule.value
        ticket.clock_started_at = deadline.started_at
        ticket.process_at = deadline.due_at


def due_columns(ctx: ServiceContext, ticket: TicketLike, zone: str) -> dict[str, object]:
    """The next instant the deadline sweep must look at this ticket, and what it does then
    (`zone`: the vendor's time zone)."""
    if ticket.status != Status.OPEN.value:
        return {"due_at": None, "due_kind": None}
    if ticket.type in REQUEST_TYPES:
        return {"due_at": ticket.process_at,
                "due_kind": "process" if ticket.process_at is not None else None}
    if ticket.last_activity_at is not None and ticket.last_activity_side is not None:
        step = rules.inactivity_step(
            ctx.policy, ticket.last_activity_at, Role(ticket.last_activity_side),
            ticket.warnings_sent, zone,
        )
        return {"due_at": step.due_at, "due_kind": step.kind}
    return {"due_at": None, "due_kind": None}


def refresh_due(ctx: ServiceContext, ticket: Ticket) -> None:
    """Set the ticket's next deadline (due_columns) on the object, for the flush."""
    for key, value in due_columns(ctx, ticket, vendor_zone(ticket)).items():
        setattr(ticket, key, value)


def activity_columns(actor: Actor, at: datetime) -> dict[str, object]:
    """Activity by a party restarts the inactivity clock (warnings are not activity)."""
    if actor.role in (Role.CUSTOMER, Role.VENDOR, Role.STAFF):
        return {"last_activity_at": at, "last_activity_side": _side(actor.role).value,
                "warnings_sent": 0}
    return {}


def touch(ticket: Ticket, actor: Actor, at: datetime) -> None:
    """Restart the inactivity clock on the object, for the flush."""
    for key, value in activity_columns(actor, at).items():
        setattr(ticket, key, value)


def note_activity(session: Session, ctx: ServiceContext, ticket: Ticket, actor: Actor) -> None:
    """`touch` then `refresh_due`, written through the table at once when nothing else of the
    ticket waits for the flush: a reply changes only these columns, and the unit of work
    costs several times the one UPDATE (measured in bench/inbound.py)."""
    if inspect(ticket).modified:  # pending changes: the flush writes these with them
        touch(ticket, actor, ctx.now)
        refresh_due(ctx, ticket)
        return
    changed = _settle(ticket, activity_columns(actor, ctx.now))
    changed.update(_settle(ticket, due_columns(ctx, ticket, vendor_zone(ticket))))
    if changed:
        journal.write_columns(session, Ticket, ticket.id, changed)


def _settle(ticket: Ticket, values: dict[str, object]) -> dict[str, object]:
    """Show values as the row's own (no pending change); returns those that differ."""
    changed = {}
    for key, value in values.items():
        if getattr(ticket, key) != value:
            changed[key] = value
            set_committed_value(ticket, key, value)
    return changed


def add_message(session: Session, ctx: ServiceContext, ticket: Ticket, actor: Actor, text: str,
                *, original: str | None = None, html: str | None = None,
                message_id: str | None = None, inbound_id: int | None = None,
                attachments: list[StoredAttachment] | None = None
                ) -> int:
    """Write a message (and its attachments) to the ticket's history now; returns its id.
    A loaded `ticket.messages` is expired and shows it when read again."""
    email = actor.email
    if email is None and actor.role in (Role.CUSTOMER, Role.VENDOR):
        email = journal.party_address(ticket, actor.role, ctx.staff_email)[0]
    if ticket.id is None:
        session.flush()
    return write_message(session, ctx, ticket.id, actor, email, text, original=original,
                         html=html, message_id=message_id, inbound_id=inbound_id,
                         attachments=attachments)


def write_message(session: Session, ctx: ServiceContext, ticket_id: int, actor: Actor,
                  email: str | None, text: str, *, original: str | None = None,
                  html: str | None = None, message_id: str | None = None,
                  inbound_id: int | None = None,
                  attachments: list[StoredAttachment] | None = None
                  ) -> int:
    """The message row and its attachments' rows, by the ticket's id; returns its id.
    A vendor's text gets the vendor's signature under it (once)."""
    text = reply_texts.signed(session, ticket_id, actor, text)
    message = journal.insert_row(session, Message, {
        "ticket_id": ticket_id, "author_role": actor.role.value, "author_email": email,
        "text": text, "original": original, "html": html, "source": actor.source,
        "message_id": message_id, "inbound_id": inbound_id, "created_at": ctx.now,
        "verified": actor.verified,
    })
    for part in attachments or []:
        journal.insert_row(session, Attachment, {
            "message_id": message, "filename": part.filename, "stored_name": part.stored_name,
            "content_type": part.content_type, "size": part.size, "data": part.data,
            "content_id": part.content_id})
    journal.forget(session, journal.loaded(session, Ticket, ticket_id), "messages")
    return message




def convert(session: Session, ctx: ServiceContext, ticket: Ticket, new_type: TicketType,
            actor: Actor, *, reason: str | None = None, comment: str | None = None,
            message_id: str | None = None, original: str | None = None,
            html: str | None = None, inbound_id: int | None = None,
            attachments: list[StoredAttachment] | None = None) -> Ticket:
    """Turn a tech-support ticket into a refund/cancellation (counts as opening it now)."""
    order = ticket.order
    old = ticket.type
    ticket.type = new_type.value
    ticket.reason = rules.check_refund_reason(
        ctx.policy, actor.role, reason, asked_support=True, converting=True
    ) if new_type is TicketType.REFUND else check_code(new_type, reason)
    if new_type is TicketType.REFUND:
        ticket.refund_kind = RefundKind.FULL.value
        ticket.refund_value = None
        ticket.refund_amount = rules.refund_amount(
            order_facts(order), RefundKind.FULL, None, vendor_facts(order.vendor))
    set_deadline(ticket, rules.open_deadline(
        ctx.policy, new_type, actor.role, order_facts(order), vendor_facts(order.vendor), ctx.now))
    touch(ticket, actor, ctx.now)
    if comment:
        add_message(session, ctx, ticket, actor, comment, original=original, html=html,
                    message_id=message_id, inbound_id=inbound_id, attachments=attachments)
    event = journal.record(session, ctx, actor, "type", ticket=ticket, old=old, new=new_type.value)
    refresh_due(ctx, ticket)
    journal.notify(session, ctx, ticket, "changed", event=event)
    return ticket




def set_may_respond(session: Session, ctx: ServiceContext, vendor: Vendor, allowed: bool,
                    actor: Actor, *, note: str | None = None) -> None:
    """Revoke or restore a vendor's right to respond; revoked, open requests run in 5 min."""
    if vendor.may_respond == allowed:
        return
    vendor.may_respond = allowed
    if allowed:
        vendor.dispute_count = 0
    journal.record(session, ctx, actor, "privilege", vendor_id=vendor.id,
                   old="may_respond" if not allowed else "revoked",
                   new="revoked" if not allowed else "may_respond", note=note)
    if allowed:
        return
    standing.revoked_mails(session, ctx, vendor, actor.role, note)
    tickets = session.execute(
        select(Ticket).join(Order).where(
            Order.vendor_id == vendor.id, Ticket.status == "open",
            Ticket.type.in_(REQUEST_TYPES), Ticket.awaiting_confirmation.is_(False))
    ).unique().scalars()
    for ticket in tickets:
        quick = rules.quick_deadline(ctx.policy, ctx.now)
        if ticket.process_at is None or (quick.due_at and quick.due_at < ticket.process_at):
            set_deadline(ticket, quick)
            refresh_due(ctx, ticket)




def recompute_vendor_deadlines(session: Session, ctx: ServiceContext, vendor: Vendor) -> int:
    """After a zone change: every open deadline recomputed from its stored inputs."""
    tickets = session.execute(
        select(Ticket).join(Order).where(Order.vendor_id == vendor.id, Ticket.status == "open")
    ).unique().scalars().all()
    for ticket in tickets:
        if ticket.process_rule and ticket.clock_started_at:
            ticket.process_at = rules.due_at(ctx.policy, DeadlineRule(ticket.process_rule),
                                             ticket.clock_started_at, vendor.timezone)
        refresh_due(ctx, ticket)
    return len(tickets)


