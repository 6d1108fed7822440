"""Rows turned into the plain facts the pure rules read."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.domain.facts import (
    CloseReason,
    DeadlineRule,
    OrderFacts,
    RefundKind,
    Role,
    Status,
    TicketFacts,
    TicketType,
    VendorFacts,
)
from store.models import Order, Ticket, Vendor


def vendor_facts(vendor: Vendor) -> VendorFacts:
    return VendorFacts(
        zone=vendor.timezone,
        may_respond=vendor.may_respond,
        partial_refunds_enabled=vendor.partial_refunds_enabled,
        dispute_count=vendor.dispute_count,
    )


def order_facts(order: Order) -> OrderFacts:
    # only a recurring product's windows and refunds depend on its bills: others never load them
    latest = order.payments[-1] if order.product.recurring and order.payments else None
    return OrderFacts(
        purchased_at=order.purchased_at,
        amount=order.amount,
        kind=order.product.kind,
        recurring=order.product.recurring,
        quantity=order.quantity,
        latest_bill_at=latest.at if latest is not None else None,
        latest_bill_amount=latest.amount if latest is not None else None,
        refunded_amount=order.refunded_amount,
        subscription_active=order.product.recurring and order.subscription == "active",
        shipped=order.shipped,
        return_info=order.return_info,
        support_active=order.support_active,
    )


def open_types(session: Session, order_id: int, *, except_id: int | None = None
               ) -> frozenset[TicketType]:
    query = select(Ticket.type).where(Ticket.order_id == order_id, Ticket.status == "open")
    if except_id is not None:
        query = query.where(Ticket.id != except_id)
    return frozenset(TicketType(t) for t in session.execute(query).scalars())


def ticket_facts(session: Session, ticket: Ticket, *,
                 with_open_types: bool = True) -> TicketFacts:
    """`with_open_types=False` skips a query when the action cannot open or convert a ticket."""
    return TicketFacts(
        type=TicketType(ticket.type),
        status=Status(ticket.status),
        created_by=Role(ticket.created_by),
        created_at=ticket.created_at,
        refund_kind=RefundKind(ticket.refund_kind) if ticket.refund_kind else None,
        refund_value=ticket.refund_value,
        escalated=ticket.escalated,
        awaiting_confirmation=ticket.awaiting_confirmation,
        disputable_until=ticket.disputable_until,
        close_reason=CloseReason(ticket.close_reason) if ticket.close_reason else None,
        last_activity_at=ticket.last_activity_at,
        last_activity_side=Role(ticket.last_activity_side) if ticket.last_activity_side else None,
        warnings_sent=ticket.warnings_sent,
        deadline_rule=DeadlineRule(ticket.process_rule) if ticket.process_rule else None,
        open_types=(open_types(session, ticket.order_id, except_id=ticket.id)
                    if with_open_types else frozenset()),
    )
