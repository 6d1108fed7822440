"""Ticket services: open a ticket and apply one action, each in the caller's transaction.

Every function validates with the pure rules first, so a refused request changes nothing,
then changes the ticket, writes the event log and the outbox rows the change causes.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal, InvalidOperation

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.domain import actions, rules
from gateway.domain.errors import Conflict, Forbidden, NotFound, UserError
from gateway.domain.facts import (
    Action,
    CloseReason,
    DeadlineRule,
    RefundKind,
    Role,
    Status,
    TicketType,
)
from gateway.domain.reasons import check_code
from gateway.services import journal
from gateway.services.context import Actor, ServiceContext
from gateway.services.snapshots import open_types, order_facts, ticket_facts, vendor_facts
from store.db import is_postgres
from store.models import Attachment, Message, Order, Ticket, Vendor

REQUEST_TYPES = (TicketType.REFUND.value, TicketType.CANCELLATION.value)

_CLOSE_REASON = {
    Role.CUSTOMER: CloseReason.BY_CUSTOMER,
    Role.VENDOR: CloseReason.BY_VENDOR,
    Role.STAFF: CloseReason.BY_STAFF,
    Role.SYSTEM: CloseReason.BY_STAFF,
}
_KIND_OF_ACTION = {
    Action.FULL: RefundKind.FULL,
    Action.PARTIAL: RefundKind.AMOUNT,
    Action.PERCENT: RefundKind.PERCENT,
    Action.QUANTITY: RefundKind.QUANTITY,
}


def find_order(session: Session, receipt: str) -> Order:
    order = session.execute(
        select(Order).where(Order.receipt == receipt.strip().upper())
    ).scalar_one_or_none()
    if order is None:
        raise NotFound(f"no order with receipt {receipt!r}; check the receipt number")
    return order


def find_ticket(session: Session, number: int, *, lock: bool = False) -> Ticket:
    query = select(Ticket).where(Ticket.number == number)
    if lock and is_postgres(session):
        query = query.with_for_update(of=Ticket)
    ticket = session.execute(query).unique().scalar_one_or_none()
    if ticket is None:
        raise NotFound(f"no ticket #{number}")
    return ticket


def _side(role: Role) -> Role:
    """Staff count on the vendor's side for inactivity."""
    return Role.CUSTOMER if role is Role.CUSTOMER else Role.VENDOR


def _zone(ticket: Ticket) -> str:
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


def refresh_due(ctx: ServiceContext, ticket: Ticket) -> None:
    """The next instant the deadline sweep must look at this ticket, and what it does then."""
    if ticket.status != Status.OPEN.value:
        ticket.due_at, ticket.due_kind = None, None
    elif ticket.type in REQUEST_TYPES:
        ticket.due_at = ticket.process_at
        ticket.due_kind = "process" if ticket.process_at is not None else None
    elif ticket.last_activity_at is not None and ticket.last_activity_side is not None:
        step = rules.inactivity_step(
            ctx.policy, ticket.last_activity_at, Role(ticket.last_activity_side),
            ticket.warnings_sent, _zone(ticket),
        )
        ticket.due_at, ticket.due_kind = step.due_at, step.kind
    else:
        ticket.due_at, ticket.due_kind = None, None


def _touch(ticket: Ticket, actor: Actor, at: datetime) -> None:
    """Activity by a party restarts the inactivity clock (warnings are not activity)."""
    if actor.role in (Role.CUSTOMER, Role.VENDOR, Role.STAFF):
        ticket.last_activity_at = at
        ticket.last_activity_side = _side(actor.role).value
        ticket.warnings_sent = 0


def add_message(session: Session, ctx: ServiceContext, ticket: Ticket, actor: Actor, text: str,
                *, original: str | None = None, html: str | None = None,
                message_id: str | None = None, inbound_id: int | None = None,
                attachments: list[tuple[str, str, int, bytes | None, str]] | None = None
                ) -> Message:
    email = actor.email
    if email is None and actor.role in (Role.CUSTOMER, Role.VENDOR):
        email = journal.party_address(ticket, actor.role, ctx.staff_email)[0]
    message = Message(
        author_role=actor.role.value, author_email=email,
        text=text, original=original, html=html, source=actor.source,
        message_id=message_id, inbound_id=inbound_id, created_at=ctx.now,
    )
    # set through the relationship (not by ticket_id): a loaded `ticket.messages` gets it
    # at once, an unloaded one is not loaded (a reply does not read the whole history) and
    # shows it when it loads later. The next flush (journal.notify's) writes it.
    message.ticket = ticket
    message.attachments = [
        Attachment(filename=filename, stored_name=stored_name, content_type=content_type,
                   size=size, data=data)
        for filename, content_type, size, data, stored_name in attachments or []
    ]
    session.add(message)
    return message


def open_ticket(session: Session, ctx: ServiceContext, receipt: str, ticket_type: TicketType,
                actor: Actor, *, reason: str | None = None, comment: str | None = None,
                awaiting_confirmation: bool = False, message_id: str | None = None,
                original: str | None = None, inbound_id: int | None = None,
                notify: bool = True) -> Ticket:
    """Open a ticket, or convert the order's open tech-support ticket when a refund is asked."""
    order = find_order(session, receipt)
    vendor = order.vendor
    code = check_code(ticket_type, reason)
    decision = rules.check_open(
        ctx.policy, ticket_type, actor.role, order_facts(order), vendor_facts(vendor), ctx.now,
        open_types(session, order.id),
    )
    if decision.convert:
        current = session.execute(
            select(Ticket).where(Ticket.order_id == order.id, Ticket.status == "open",
                                 Ticket.type == TicketType.TECH_SUPPORT.value)
        ).unique().scalar_one()
        return convert(session, ctx, current, ticket_type, actor, reason=code, comment=comment,
                       message_id=message_id, original=original, inbound_id=inbound_id)
    ticket = Ticket(
        number=journal.next_ticket_number(session), order_id=order.id, type=ticket_type.value,
        status=Status.OPEN.value, created_by=actor.role.value, created_at=ctx.now,
        warnings_sent=0, escalated=False, awaiting_confirmation=awaiting_confirmation,
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
    _touch(ticket, actor, ctx.now)
    if comment:
        add_message(session, ctx, ticket, actor, comment, original=original,
                    message_id=message_id, inbound_id=inbound_id)
    event = journal.record(session, ctx, actor, "opened", ticket=ticket, new=ticket_type.value)
    refresh_due(ctx, ticket)
    if notify and not awaiting_confirmation:
        journal.notify(session, ctx, ticket, "opened", event=event)
    return ticket


def confirm(session: Session, ctx: ServiceContext, ticket: Ticket, actor: Actor) -> Ticket:
    """An unverified legacy request confirmed through its signed link: the clock starts now."""
    if not ticket.awaiting_confirmation:
        return ticket
    if ticket.status != Status.OPEN.value:
        raise Conflict(f"ticket #{ticket.number} is closed; nothing to confirm")
    order = ticket.order
    ticket.awaiting_confirmation = False
    set_deadline(ticket, rules.open_deadline(
        ctx.policy, TicketType(ticket.type), Role(ticket.created_by), order_facts(order),
        vendor_facts(order.vendor), ctx.now))
    event = journal.record(session, ctx, actor, "confirmed", ticket=ticket,
                           new=ticket.process_at.isoformat() if ticket.process_at else None)
    refresh_due(ctx, ticket)
    journal.notify(session, ctx, ticket, "opened", event=event)
    return ticket


def convert(session: Session, ctx: ServiceContext, ticket: Ticket, new_type: TicketType,
            actor: Actor, *, reason: str | None = None, comment: str | None = None,
            message_id: str | None = None, original: str | None = None,
            inbound_id: int | None = None) -> Ticket:
    """Turn a tech-support ticket into a refund/cancellation (counts as opening it now)."""
    order = ticket.order
    old = ticket.type
    ticket.type = new_type.value
    ticket.reason = check_code(new_type, reason)
    if new_type is TicketType.REFUND:
        ticket.refund_kind = RefundKind.FULL.value
        ticket.refund_value = None
        ticket.refund_amount = rules.refund_amount(
            order_facts(order), RefundKind.FULL, None, vendor_facts(order.vendor))
    set_deadline(ticket, rules.open_deadline(
        ctx.policy, new_type, actor.role, order_facts(order), vendor_facts(order.vendor), ctx.now))
    _touch(ticket, actor, ctx.now)
    if comment:
        add_message(session, ctx, ticket, actor, comment, original=original,
                    message_id=message_id, inbound_id=inbound_id)
    event = journal.record(session, ctx, actor, "type", ticket=ticket, old=old, new=new_type.value)
    refresh_due(ctx, ticket)
    journal.notify(session, ctx, ticket, "changed", event=event)
    return ticket


def _decimal(value: str | Decimal | int | None, what: str) -> Decimal:
    if value is None or str(value).strip() == "":
        raise UserError(f"{what} is missing", code="invalid_value")
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        raise UserError(f"{what} {value!r} is not a number", code="invalid_value") from None
    if not number.is_finite():
        raise UserError(f"{what} {value!r} is not a number", code="invalid_value")
    return number


def act(session: Session, ctx: ServiceContext, number: int, action: Action, actor: Actor, *,
        comment: str | None = None, value: str | Decimal | int | None = None,
        message_id: str | None = None, original: str | None = None,
        inbound_id: int | None = None,
        attachments: list[tuple[str, str, int, bytes | None, str]] | None = None) -> Ticket:
    """Apply one action; returns the ticket it landed on (a follow-up or converted one)."""
    ticket = find_ticket(session, number, lock=True)
    order = ticket.order
    vendor = order.vendor
    if action is Action.REPLY and ticket.status == Status.CLOSED.value:
        return _reply_to_closed(session, ctx, ticket, actor, comment, message_id=message_id,
                                original=original, inbound_id=inbound_id, attachments=attachments)
    facts = ticket_facts(session, ticket, with_open_types=action is Action.REFUND)
    actions.check_action(ctx.policy, action, actor.role, facts, order_facts(order),
                       vendor_facts(vendor), ctx.now)
    if action is Action.REPLY:
        if not comment or not comment.strip():
            raise UserError("a reply needs some text", code="empty_reply")
        add_message(session, ctx, ticket, actor, comment, attachments=attachments,
                    message_id=message_id, original=original, inbound_id=inbound_id)
        _touch(ticket, actor, ctx.now)
        event = journal.record(session, ctx, actor, "reply", ticket=ticket)
        refresh_due(ctx, ticket)
        journal.notify(session, ctx, ticket, "reply", event=event)
        return ticket
    if comment:
        add_message(session, ctx, ticket, actor, comment, attachments=attachments,
                    message_id=message_id, original=original, inbound_id=inbound_id)
    _touch(ticket, actor, ctx.now)
    handler = _HANDLERS[action]
    handler(session, ctx, ticket, actor, value)
    refresh_due(ctx, ticket)
    return ticket


def _consent_needed(ticket: Ticket, actor: Actor) -> bool:
    return (actor.role is Role.VENDOR and ticket.type in REQUEST_TYPES
            and ticket.created_by != Role.VENDOR.value)


def _open_consent(ctx: ServiceContext, ticket: Ticket) -> None:
    """A vendor closed or changed the customer's request: the customer may dispute it."""
    ticket.restore_type = ticket.restore_type or ticket.type
    ticket.disputable_until = rules.customer_window_end(
        ctx.policy, order_facts(ticket.order), _zone(ticket))


def _close(session: Session, ctx: ServiceContext, ticket: Ticket, actor: Actor,
           value: object) -> None:
    consent = _consent_needed(ticket, actor)
    if consent:
        _open_consent(ctx, ticket)
    ticket.status = Status.CLOSED.value
    ticket.closed_at = ctx.now
    ticket.close_reason = _CLOSE_REASON[actor.role].value
    set_deadline(ticket, None)
    event = journal.record(session, ctx, actor, "status", ticket=ticket, old="open", new="closed",
                           note=ticket.close_reason)
    journal.notify(session, ctx, ticket, "closed", event=event,
                   payload={"disputable": True} if consent else None)


def _reopen(session: Session, ctx: ServiceContext, ticket: Ticket, actor: Actor,
            value: object) -> None:
    ticket.status = Status.OPEN.value
    ticket.closed_at = None
    ticket.close_reason = None
    if ticket.type in REQUEST_TYPES:
        order = ticket.order
        set_deadline(ticket, rules.open_deadline(
            ctx.policy, TicketType(ticket.type), actor.role, order_facts(order),
            vendor_facts(order.vendor), ctx.now))
    event = journal.record(session, ctx, actor, "status", ticket=ticket, old="closed", new="open")
    journal.notify(session, ctx, ticket, "changed", event=event)


def _techsupport(session: Session, ctx: ServiceContext, ticket: Ticket, actor: Actor,
                 value: object) -> None:
    if _consent_needed(ticket, actor):
        _open_consent(ctx, ticket)
    old = ticket.type
    ticket.type = TicketType.TECH_SUPPORT.value
    ticket.problem = ticket.problem or "other"
    ticket.refund_kind = None
    ticket.refund_value = None
    ticket.refund_amount = None
    set_deadline(ticket, None)
    event = journal.record(session, ctx, actor, "type", ticket=ticket, old=old,
                           new=TicketType.TECH_SUPPORT.value)
    journal.notify(session, ctx, ticket, "changed", event=event,
                   payload={"disputable": True} if ticket.disputable_until else None)


def _refund(session: Session, ctx: ServiceContext, ticket: Ticket, actor: Actor,
            value: object) -> None:
    if ticket.type == TicketType.TECH_SUPPORT.value:
        convert(session, ctx, ticket, TicketType.REFUND, actor, reason=ticket.reason)
        return
    # Please Refund: the vendor (or staff) asks to execute within 5 minutes
    old = ticket.process_at
    set_deadline(ticket, rules.quick_deadline(ctx.policy, ctx.now))
    ticket.awaiting_confirmation = False
    event = journal.record(session, ctx, actor, "process_at", ticket=ticket,
                           old=old.isoformat() if old else None,
                           new=ticket.process_at.isoformat() if ticket.process_at else None,
                           note="please_refund")
    journal.notify(session, ctx, ticket, "changed", event=event)


Handler = Callable[[Session, ServiceContext, Ticket, Actor, object], None]


def _refund_kind(action: Action) -> Handler:
    def handler(session: Session, ctx: ServiceContext, ticket: Ticket, actor: Actor,
                value: object) -> None:
        kind = _KIND_OF_ACTION[action]
        amount_value = None if kind is RefundKind.FULL else _decimal(
            value if isinstance(value, (str, Decimal, int)) else None, f"the {action.value} value")
        order = ticket.order
        amount = rules.refund_amount(order_facts(order), kind, amount_value,
                                     vendor_facts(order.vendor))
        if _consent_needed(ticket, actor):
            _open_consent(ctx, ticket)
        old = ticket.refund_kind
        ticket.refund_kind = kind.value
        ticket.refund_value = amount_value
        ticket.refund_amount = amount
        event = journal.record(session, ctx, actor, "refund_kind", ticket=ticket, old=old,
                               new=kind.value, note=f"{amount}")
        journal.notify(session, ctx, ticket, "changed", event=event,
                       payload={"disputable": True} if ticket.disputable_until else None)
    return handler


def _escalate(session: Session, ctx: ServiceContext, ticket: Ticket, actor: Actor,
              value: object) -> None:
    note = value if isinstance(value, str) and value else (
        ticket.messages[-1].text if ticket.messages else None)
    ticket.escalated = True
    ticket.escalation_note = note
    event = journal.record(session, ctx, actor, "escalated", ticket=ticket, old="false",
                           new="true", note=note)
    journal.notify(session, ctx, ticket, "escalated",
                   (Role.CUSTOMER, Role.VENDOR, Role.STAFF), event=event)


def _agree(session: Session, ctx: ServiceContext, ticket: Ticket, actor: Actor,
           value: object) -> None:
    ticket.disputable_until = None
    ticket.restore_type = None
    journal.record(session, ctx, actor, "consent", ticket=ticket, new="agreed")


def _dispute(session: Session, ctx: ServiceContext, ticket: Ticket, actor: Actor,
             value: object) -> None:
    """"I did not agree": the request comes back and executes in 5 minutes."""
    restored = TicketType(ticket.restore_type or ticket.type)
    old_type, old_status = ticket.type, ticket.status
    ticket.type = restored.value
    ticket.status = Status.OPEN.value
    ticket.closed_at = None
    ticket.close_reason = None
    ticket.disputable_until = None
    ticket.restore_type = None
    order = ticket.order
    if restored is TicketType.REFUND:
        ticket.refund_kind = RefundKind.FULL.value
        ticket.refund_value = None
        ticket.refund_amount = rules.refund_amount(
            order_facts(order), RefundKind.FULL, None, vendor_facts(order.vendor))
    set_deadline(ticket, rules.quick_deadline(ctx.policy, ctx.now))
    event = journal.record(session, ctx, actor, "dispute", ticket=ticket,
                           old=f"{old_type}/{old_status}", new=f"{restored.value}/open")
    vendor = order.vendor
    after = rules.after_dispute(vendor_facts(vendor), ctx.policy)
    vendor.dispute_count = after.dispute_count
    if vendor.may_respond and not after.may_respond:
        set_may_respond(session, ctx, vendor, False, Actor(Role.SYSTEM, source="system"),
                        note=f"{after.dispute_count} disputes")
    journal.notify(session, ctx, ticket, "changed", event=event)


def _returned(session: Session, ctx: ServiceContext, ticket: Ticket, actor: Actor,
              value: object) -> None:
    order = ticket.order
    order.return_acknowledged_at = ctx.now
    set_deadline(ticket, rules.Deadline(DeadlineRule.RETURNED, ctx.now, ctx.now))
    journal.record(session, ctx, actor, "returned", ticket=ticket, new=ctx.now.isoformat())


def _reply_to_closed(session: Session, ctx: ServiceContext, ticket: Ticket, actor: Actor,
                     comment: str | None, **extra: object) -> Ticket:
    """SPEC 11.9: a customer's reply opens a follow-up; a vendor's changes nothing."""
    if actor.role is not Role.CUSTOMER:
        raise Conflict(
            f"ticket #{ticket.number} is closed; your reply was not added. "
            "Staff can reopen it if needed.", code="ticket_closed")
    if not comment or not comment.strip():
        raise UserError("a reply needs some text", code="empty_reply")
    order = ticket.order
    existing = session.execute(
        select(Ticket).where(Ticket.order_id == order.id, Ticket.status == "open",
                             Ticket.type == TicketType.TECH_SUPPORT.value)
    ).unique().scalar_one_or_none()
    if existing is not None:
        return act(session, ctx, existing.number, Action.REPLY, actor, comment=comment,
                   **extra)  # type: ignore[arg-type]
    follow = open_ticket(session, ctx, order.receipt, TicketType.TECH_SUPPORT, actor,
                         comment=comment, notify=False,
                         message_id=extra.get("message_id"),  # type: ignore[arg-type]
                         original=extra.get("original"),  # type: ignore[arg-type]
                         inbound_id=extra.get("inbound_id"))  # type: ignore[arg-type]
    follow.follows_id = ticket.id
    journal.record(session, ctx, actor, "follow_up", ticket=follow, old=str(ticket.number))
    journal.notify(session, ctx, follow, "opened")
    return follow


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


_HANDLERS: dict[Action, Handler] = {
    Action.CLOSE: _close,
    Action.REOPEN: _reopen,
    Action.TECHSUPPORT: _techsupport,
    Action.REFUND: _refund,
    Action.FULL: _refund_kind(Action.FULL),
    Action.PARTIAL: _refund_kind(Action.PARTIAL),
    Action.PERCENT: _refund_kind(Action.PERCENT),
    Action.QUANTITY: _refund_kind(Action.QUANTITY),
    Action.ESCALATE: _escalate,
    Action.AGREE: _agree,
    Action.DISPUTE: _dispute,
    Action.RETURNED: _returned,
}


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


def ensure_party(ticket: Ticket, actor: Actor) -> None:
    """A vendor acts on its own tickets only (the API answers 404 for others')."""
    if (actor.role is Role.VENDOR and actor.email is not None
            and actor.email.lower() not in ticket.order.vendor.addresses):
        raise Forbidden("this ticket belongs to another vendor")
