"""The money side of executing a refund or cancellation, behind one small interface."""

from __future__ import annotations

from decimal import Decimal
from typing import Protocol

from sqlalchemy.orm import Session

from gateway.domain.policy import Policy
from store.models import Order, Ticket


class RefundExecutor(Protocol):
    def refund(self, session: Session, order: Order, ticket: Ticket, amount: Decimal) -> None: ...

    def cancel(self, session: Session, order: Order, ticket: Ticket) -> None: ...


class RecordingExecutor:
    """The default: records the refund or cancellation on the order, nothing else."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy

    def refund(self, session: Session, order: Order, ticket: Ticket, amount: Decimal) -> None:
        order.refunded_amount = order.refunded_amount + amount
        if order.payments:
            # a recurring product refunds its most recent bill only
            latest = order.payments[-1]
            latest.refunded_amount = latest.refunded_amount + amount
        if order.product.recurring and order.subscription == "active":
            order.subscription = "cancelled"
        if self.policy.refund_ends_support:
            order.support_active = False

    def cancel(self, session: Session, order: Order, ticket: Ticket) -> None:
        order.subscription = "cancelled"
