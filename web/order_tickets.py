"""An order's tickets as the customer's pages show them: the list on the receipt page, and
whether a refund may still be asked for."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from store.models import Order, Ticket


def listed(session: Session, order: Order) -> list[tuple[int, str, str]]:
    """(number, type, status) of the order's tickets, newest first."""
    rows = session.execute(
        select(Ticket.number, Ticket.type, Ticket.status)
        .where(Ticket.order_id == order.id).order_by(Ticket.number.desc()))
    return [(number, kind, status) for number, kind, status in rows]


def refundable(order: Order) -> bool:
    """Whether a refund is left to ask for: not once the whole amount came back."""
    return order.refunded_amount < order.amount

