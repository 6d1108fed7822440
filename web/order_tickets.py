"""An order's tickets as the customer's pages show them: the list on the receipt page, the
ticket a refusal names, and whether a refund may still be asked for."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.domain.texts import Text
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


def named(session: Session, order: Order, message: object, ticket_type: str) -> int | None:
    """The ticket a refusal speaks of: the number it names (`ticket #12`), else, when it
    speaks of an open ticket of the order ("this order already has an open refund ticket"),
    that ticket; None when it names none."""
    if not isinstance(message, Text) or "ticket" not in message.msgid:
        return None
    number = message.params.get("n")
    if isinstance(number, int):
        return number
    if "open" not in message.msgid:
        return None
    wanted = select(Ticket.number).where(Ticket.order_id == order.id, Ticket.status == "open")
    same_type = session.scalars(wanted.where(Ticket.type == ticket_type)).first()
    return same_type if same_type is not None else session.scalars(wanted).first()
