"""Ticket services: open a ticket and apply one action, each in the caller's transaction.

Every function validates with the pure rules first, so a refused request changes nothing,
then changes the ticket, writes the event log and the outbox rows the change causes.
"""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.domain import actions, rules
from gateway.domain.errors import Conflict, Forbidden, UserError
from gateway.domain.facts import (
    Action,
    RefundKind,
    Role,
    Status,
    TicketType,
)
from gateway.domain.reasons import check_code
from gateway.domain.texts import _
from gateway.domain.titles import ticket_title
from gateway.services import journal, reply_texts, support
from gateway.services.context import NO_ORIGIN, Actor, MailOrigin, ServiceContext
from gateway.services.snapshots import open_types, order_facts, ticket_facts, vendor_facts
from gateway.services.ticket_actions import HANDLERS
from gateway.services.ticket_state import (  # the ticket services' whole surface, in one place
    REQUEST_TYPES,
    add_message,
    convert,
    find_order,
    find_ticket,
    note_activity,
    recompute_vendor_deadlines,
    refresh_due,
    set_deadline,
    set_may_respond,
    touch,
)
from store.models import Ticket

__all__ = [
    "REQUEST_TYPES", "act", "add_message", "check_confirmable", "confirm", "convert",
    "ensure_party", "find_order", "find_ticket", "open_ticket", "recompute_vendor_deadlines",
    "refresh_due", "set_deadline", "set_may_respond",
]


def open_ticket(session: Session, ctx: ServiceContext, receipt: str, ticket_type: TicketType,
                actor: Actor, *, reason: str | None = None, comment: str | None = None,
                awaiting_confirmation: bool = False, origin: MailOrigin = NO_ORIGIN,
                notify: bool = True) -> Ticket:
    """Open a ticket, or convert the order's open tech-support ticket when a refund is asked.
    `origin`: where the comment came from, kept with it."""
    order = find_order(session, receipt)
    vendor = order.vendor
    code = _reason(session, ctx, ticket_type, actor, order.id, reason)
    decision = rules.check_open(
        ctx.policy, ticket_type, actor.role, support.facts_for_support(session, ctx.policy, order)
        if ticket_type is TicketType.TECH_SUPPORT else order_facts(order),
        vendor_facts(vendor), ctx.now, open_types(session, order.id),
    )
    if decision.convert:
        current = session.execute(
            select(Ticket).where(Ticket.order_id == order.id, Ticket.status == "open",
                                 Ticket.type == TicketType.TECH_SUPPORT.value)
        ).unique().scalar_one()
        return convert(session, ctx, current, ticket_type, actor, reason=code, comment=comment,
                       message_id=origin.message_id, original=origin.original,
                       html=origin.html, inbound_id=origin.inbound_id,
                       attachments=list(origin.attachments))
    ticket = Ticket(
        number=journal.next_ticket_number(session), order_id=order.id,
        vendor_id=order.vendor_id, type=ticket_type.value, status=Status.OPEN.value,
        created_by=actor.role.value, created_at=ctx.now,
        warnings_sent=0, escalated=False, awaiting_confirmation=awaiting_confirmation,
        title=ticket_title(origin.subject),
    )
    ticket.order = order
    if ticket_type is TicketType.TECH_SUPPORT:
        ticket.problem = code
    else:
        ticket.reason = code
    if ticket_type is TicketType.REFUND:
        ticket.refund_kind = RefundKind.FULL.value
        ticket.refund_amount = rules.refund_amount(
            order_facts(order), RefundKind.FULL, None, vendor_facts(vendor))
    if ticket_type is not TicketType.TECH_SUPPORT and not awaiting_confirmation:
        set_deadline(ticket, rules.open_deadline(
            ctx.policy, ticket_type, actor.role, order_facts(order), vendor_facts(vendor), ctx.now))
    session.add(ticket)
    session.flush()
    touch(ticket, actor, ctx.now)
    if comment:
        _add_message(session, ctx, ticket, actor, comment, origin)
    event = journal.record(session, ctx, actor, "opened", ticket=ticket, new=ticket_type.value)
    refresh_due(ctx, ticket)
    if notify and not awaiting_confirmation:
        journal.notify(session, ctx, ticket, "opened", event=event)
    return ticket


def _reason(session: Session, ctx: ServiceContext, ticket_type: TicketType, actor: Actor,
            order_id: int, reason: str | None) -> str:
    """The reason (or problem) code to store; a refund's is the policy's to judge, and a
    customer's that needs an earlier tech-support ticket looks for one."""
    if ticket_type is not TicketType.REFUND:
        return check_code(ticket_type, reason)
    needs_support = (actor.role is Role.CUSTOMER
                     and (reason or "").strip().lower() in ctx.policy.reasons_after_support)
    return rules.check_refund_reason(
        ctx.policy, actor.role, reason,
        asked_support=needs_support and support.asked_support_before(session, order_id))


def confirm(session: Session, ctx: ServiceContext, ticket: Ticket, actor: Actor) -> Ticket:
    """An unverified legacy request confirmed through its signed link: the clock starts now."""
    if not ticket.awaiting_confirmation:
        return ticket
    if ticket.status != Status.OPEN.value:
        raise Conflict(_("ticket #%(n)s is closed; nothing to confirm", n=ticket.number))
    order = ticket.order
    check_confirmable(ticket)
    ticket.awaiting_confirmation = False
    set_deadline(ticket, rules.open_deadline(
        ctx.policy, TicketType(ticket.type), Role(ticket.created_by), order_facts(order),
        vendor_facts(order.vendor), ctx.now))
    event = journal.record(session, ctx, actor, "confirmed", ticket=ticket,
                           new=ticket.process_at.isoformat() if ticket.process_at else None)
    refresh_due(ctx, ticket)
    journal.notify(session, ctx, ticket, "opened", event=event)
    return ticket


def check_confirmable(ticket: Ticket) -> None:
    """Refuse to confirm a request that could no longer execute (its subscription was
    cancelled, or its order refunded in full, while it waited): it would only be processed
    a second time."""
    try:
        rules.check_executable(TicketType(ticket.type), order_facts(ticket.order))
    except Conflict as exc:
        raise Conflict(_("%(reason)s, so the request on ticket #%(n)s cannot be confirmed; "
                         "nothing was changed", reason=exc.message, n=ticket.number)) from None


def act(session: Session, ctx: ServiceContext, number: int, action: Action, actor: Actor,
        *, comment: str | None = None, value: str | Decimal | int | None = None,
             origin: MailOrigin = NO_ORIGIN, template: str | None = None) -> Ticket:
    """Apply one action; returns the ticket it landed on (a follow-up or converted one).
    `origin`: where the comment came from, kept with it; `template`: the vendor's reply
    template the comment starts with."""
    ticket = find_ticket(session, number, lock=True)
    if template:
        comment = reply_texts.with_template(session, ticket.id, actor, template, comment or "")
    order = ticket.order
    vendor = order.vendor
    if action is Action.REPLY and ticket.status == Status.CLOSED.value:
        return _reply_to_closed(session, ctx, ticket, actor, comment, origin)
    facts = ticket_facts(session, ticket, with_open_types=action is Action.REFUND)
    actions.check_action(ctx.policy, action, actor.role, facts, order_facts(order),
                       vendor_facts(vendor), ctx.now)
    if action is Action.REPLY:
        if not comment or not comment.strip():
            raise UserError(_("a reply needs some text"), code="empty_reply")
        newest = _add_message(session, ctx, ticket, actor, comment, origin)
        note_activity(session, ctx, ticket, actor)
        event = journal.record(session, ctx, actor, "reply", ticket=ticket)
        journal.notify(session, ctx, ticket, "reply", event=event, newest_message=newest)
        return ticket
    if comment:
        _add_message(session, ctx, ticket, actor, comment, origin)
    touch(ticket, actor, ctx.now)
    handler = HANDLERS[action]
    handler(session, ctx, ticket, actor, value)
    refresh_due(ctx, ticket)
    return ticket


def _add_message(session: Session, ctx: ServiceContext, ticket: Ticket, actor: Actor, text: str,
                 origin: MailOrigin) -> int:
    """`add_message` with where the text came from; returns the message's id."""
    return add_message(session, ctx, ticket, actor, text, original=origin.original,
                       html=origin.html, message_id=origin.message_id,
                       inbound_id=origin.inbound_id, attachments=list(origin.attachments))


def _reply_to_closed(session: Session, ctx: ServiceContext, ticket: Ticket, actor: Actor,
                     comment: str | None, origin: MailOrigin) -> Ticket:
    """SPEC 11.9: a customer's reply opens a follow-up; a vendor's changes nothing."""
    if actor.role is not Role.CUSTOMER:
        raise Conflict(_(
            "ticket #%(n)s is closed; your reply was not added. Staff can reopen it if needed.",
            n=ticket.number), code="ticket_closed")
    if not comment or not comment.strip():
        raise UserError(_("a reply needs some text"), code="empty_reply")
    order = ticket.order
    existing = session.execute(
        select(Ticket).where(Ticket.order_id == order.id, Ticket.status == "open",
                             Ticket.type == TicketType.TECH_SUPPORT.value)
    ).unique().scalar_one_or_none()
    if existing is not None:
        return act(session, ctx, existing.number, Action.REPLY, actor, comment=comment,
                        origin=origin)
    follow = open_ticket(session, ctx, order.receipt, TicketType.TECH_SUPPORT, actor,
                         comment=comment, notify=False, origin=origin)
    follow.follows_id = ticket.id
    follow.title = follow.title or ticket.title  # the conversation goes on under its name
    journal.record(session, ctx, actor, "follow_up", ticket=follow, old=str(ticket.number))
    journal.notify(session, ctx, follow, "opened")
    return follow


def ensure_party(ticket: Ticket, actor: Actor) -> None:
    """A vendor acts on its own tickets only (the API answers 404 for others')."""
    if (actor.role is Role.VENDOR and actor.email is not None
            and actor.email.lower() not in ticket.order.vendor.addresses):
        raise Forbidden(_("this ticket belongs to another vendor"))
