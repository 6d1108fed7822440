"""Rows turned into the plain facts the pure rules read."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Protocol

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
from store.models import Order, Payment, Ticket


class VendorLike(Protocol):
    """What the rules read of a vendor: a Vendor, or a row of its columns."""

    @property
    def timezone(self) -> str: ...
    @property
    def may_respond(self) -> bool: ...
    @property
    def partial_refunds_enabled(self) -> bool: ...
    @property
    def dispute_count(self) -> int: ...


class OrderLike(Protocol):
    """What the rules read of an order besides its product and bills."""

    @property
    def purchased_at(self) -> datetime: ...
    @property
    def amount(self) -> Decimal: ...
    @property
    def quantity(self) -> int: ...
    @property
    def refunded_amount(self) -> Decimal: ...
    @property
    def subscription(self) -> str | None: ...
    @property
    def shipped(self) -> bool: ...
    @property
    def return_info(self) -> bool: ...
    @property
    def support_active(self) -> bool: ...


class TicketLike(Protocol):
    """What the rules read of a ticket: a Ticket, or a row of its columns."""

    @property
    def type(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def created_by(self) -> str: ...
    @property
    def created_at(self) -> datetime: ...
    @property
    def refund_kind(self) -> str | None: ...
    @property
    def refund_value(self) -> Decimal | None: ...
    @property
    def escalated(self) -> bool: ...
    @property
    def awaiting_confirmation(self) -> bool: ...
    @property
    def disputable_until(self) -> datetime | None: ...
    @property
    def close_reason(self) -> str | None: ...
    @property
    def last_activity_at(self) -> datetime | None: ...
    @property
    def last_activity_side(self) -> str | None: ...
    @property
    def warnings_sent(self) -> int: ...
    @property
    def process_rule(self) -> str | None: ...
    @property
    def process_at(self) -> datetime | None: ...
    @property
    def restore_type(self) -> str | None: ...


def vendor_facts(vendor: VendorLike) -> VendorFacts:
    return VendorFacts(
        zone=vendor.timezone,
        may_respond=vendor.may_respond,
        partial_refunds_enabled=vendor.partial_refunds_enabled,
        dispute_count=vendor.dispute_count,
    )


def order_facts(order: Order) -> OrderFacts:
    # only a recurring product's windows and refunds depend on its bills: others never load them
    latest = order.payments[-1] if order.product.recurring and order.payments else None
    return order_facts_of(order, order.product.kind, order.product.recurring, latest)


def order_facts_of(order: OrderLike, kind: str, recurring: bool,
                   latest: Payment | None) -> OrderFacts:
    """`latest`: a recurring product's last bill (None for one that is not recurring)."""
    return OrderFacts(
        purchased_at=order.purchased_at,
        amount=order.amount,
        kind=kind,
        recurring=recurring,
        quantity=order.quantity,
        latest_bill_at=latest.at if latest is not None else None,
        latest_bill_amount=latest.amount if latest is not None else None,
        refunded_amount=order.refunded_amount,
        subscription_active=recurring and order.subscription == "active",
        shipped=order.shipped,
        return_info=order.return_info,
        support_active=order.support_active,
    )


def open_types(session: Session, order_id: int, *, except_id: int | None = None
               ) -> dict[TicketType, int]:
    """The order's open tickets by type, each type with its oldest open ticket's number."""
    query = select(Ticket.type, Ticket.number).where(
        Ticket.order_id == order_id, Ticket.status == "open").order_by(Ticket.number.desc())
    if except_id is not None:
        query = query.where(Ticket.id != except_id)
    return {TicketType(kind): number for kind, number in session.execute(query)}


def ticket_facts(session: Session, ticket: Ticket, *,
                 with_open_types: bool = True) -> TicketFacts:
    """`with_open_types=False` skips a query when the action cannot open or convert a ticket."""
    return ticket_facts_of(ticket, open_types(session, ticket.order_id, except_id=ticket.id)
                           if with_open_types else {})


def ticket_facts_of(ticket: TicketLike, open_types: Mapping[TicketType, int]) -> TicketFacts:
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
        restore_type=TicketType(ticket.restore_type) if ticket.restore_type else None,
        open_types=open_types,
    )
