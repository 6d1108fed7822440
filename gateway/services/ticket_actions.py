"""One handler an action (SPEC 5): each changes the ticket, logs the event, writes the mail."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal, InvalidOperation

from sqlalchemy.orm import Session

from gateway.domain import amounts, rules
from gateway.domain.errors import UserError
from gateway.domain.facts import (
    Action,
    CloseReason,
    RefundKind,
    Role,
    Status,
    TicketType,
)
from gateway.services import journal, standing
from gateway.services.context import Actor, ServiceContext
from gateway.services.snapshots import order_facts, vendor_facts
from gateway.services.ticket_state import (
    REQUEST_TYPES,
    convert,
    set_deadline,
    set_may_respond,
    vendor_zone,
)
from store.models import Ticket

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


def _decimal(value: str | Decimal | int | None, kind: RefundKind) -> Decimal:
    """The value typed for a partial refund of `kind`, refused in a sentence of that kind."""
    if value is None or str(value).strip() == "":
        raise UserError(amounts.missing_value(kind), code="invalid_value")
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        raise UserError(amounts.not_a_number(kind, repr(value)), code="invalid_value") from None
    if not number.is_finite():
        raise UserError(amounts.not_a_number(kind, repr(value)), code="invalid_value")
    return number




def _consent_needed(ticket: Ticket, actor: Actor) -> bool:
    return (actor.role is Role.VENDOR and ticket.type in REQUEST_TYPES
            and ticket.created_by != Role.VENDOR.value)


def _open_consent(ctx: ServiceContext, ticket: Ticket) -> None:
    """A vendor closed or changed the customer's request: the customer may dispute it."""
    ticket.restore_type = ticket.restore_type or ticket.type
    ticket.disputable_until = rules.customer_window_end(
        ctx.policy, order_facts(ticket.order), vendor_zone(ticket))


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
    """A conversion into a refund, or Please Refund; `value` is a reason code (`#refund
    REASON`). A vendor's approves the refund where the policy says so (the seed's "$")."""
    reason = value.strip() if isinstance(value, str) and value.strip() else None
    if ticket.type == TicketType.TECH_SUPPORT.value:
        convert(session, ctx, ticket, TicketType.REFUND, actor, reason=reason or ticket.reason)
    else:
        if reason is not None and ticket.type == TicketType.REFUND.value:
            ticket.reason = rules.check_refund_reason(ctx.policy, actor.role, reason,
                                                      asked_support=True)
        _please_refund(session, ctx, ticket, actor)
    if actor.role is Role.VENDOR and ctx.policy.dollar_reply_approves_refund:
        _approved(session, ctx, ticket, actor)


def _approved(session: Session, ctx: ServiceContext, ticket: Ticket, actor: Actor) -> None:
    """The vendor's approval goes to the marketplace's staff as an escalation (seed 004: "le
    service client PrestaShop recevront votre accord"); the customer has the change's mail."""
    note = f"refund approved by the vendor (reason: {ticket.reason or 'other'})"
    journal.record(session, ctx, actor, "refund_approved", ticket=ticket, new=ticket.reason)
    old = "true" if ticket.escalated else "false"
    ticket.escalated = True
    ticket.escalation_note = note
    event = journal.record(session, ctx, actor, "escalated", ticket=ticket, old=old,
                           new="true", note=note)
    journal.notify(session, ctx, ticket, "escalated", (Role.STAFF,), event=event)


def _please_refund(session: Session, ctx: ServiceContext, ticket: Ticket,
                   actor: Actor) -> None:
    """The vendor (or staff) asks to execute within 5 minutes."""
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
            value if isinstance(value, (str, Decimal, int)) else None, kind)
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
    standing.dispute_mail(session, ctx, ticket, vendor, event)


def _returned(session: Session, ctx: ServiceContext, ticket: Ticket, actor: Actor,
              value: object) -> None:
    order = ticket.order
    order.return_acknowledged_at = ctx.now
    set_deadline(ticket, rules.returned_deadline(ctx.now))
    journal.record(session, ctx, actor, "returned", ticket=ticket, new=ctx.now.isoformat())




HANDLERS: dict[Action, Handler] = {
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
