"""The money side of executing a refund or cancellation, behind one small interface."""

from __future__ import annotations

import hashlib
import hmac
import json
import urllib.error
import urllib.request
from datetime import datetime
from decimal import Decimal
from typing import Protocol

from sqlalchemy.orm import Session

from gateway.domain.clock import format_instant
from gateway.domain.errors import RetryLater
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


class WebhookExecutor:
    """Tells the marketplace's payment side by a signed POST, then records like the default.

    The body names the ticket, so the receiver can treat a repeat as the same request
    (`idempotency_key`); a failed POST raises RetryLater and the ticket stays due, so the
    next sweep retries it.
    """

    def __init__(self, url: str, secret: str, policy: Policy, *, timeout: float = 10.0) -> None:
        self.url = url
        self.key = hashlib.sha256(b"ticketgw-webhook\0" + secret.encode()).digest()
        self.timeout = timeout
        self.recorder = RecordingExecutor(policy)

    def refund(self, session: Session, order: Order, ticket: Ticket, amount: Decimal) -> None:
        self._post("refund", order, ticket, amount)
        self.recorder.refund(session, order, ticket, amount)

    def cancel(self, session: Session, order: Order, ticket: Ticket) -> None:
        self._post("cancellation", order, ticket, None)
        self.recorder.cancel(session, order, ticket)

    def sign(self, body: bytes) -> str:
        return "sha256=" + hmac.new(self.key, body, hashlib.sha256).hexdigest()

    def _post(self, kind: str, order: Order, ticket: Ticket, amount: Decimal | None) -> None:
        # a product's refund also refunds its support subscriptions (addons): each its own key
        other = f"-{order.receipt}" if order.id != ticket.order_id else ""
        event = {
            "event": kind,
            "idempotency_key": f"ticket-{ticket.number}-{kind}{other}",
            "ticket": ticket.number,
            "receipt": order.receipt,
            "amount": None if amount is None else f"{amount:.2f}",
            "currency": order.currency,
            "at": format_instant(_latest(ticket.closed_at, ticket.process_at)),
        }
        body = json.dumps(event, sort_keys=True).encode()
        request = urllib.request.Request(self.url, data=body, method="POST", headers={
            "Content-Type": "application/json", "X-Ticketgw-Signature": self.sign(body)})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                status = response.status
        except urllib.error.HTTPError as exc:
            status = exc.code
        except (OSError, urllib.error.URLError) as exc:
            raise RetryLater(f"refund webhook unreachable: {exc}") from None
        if not 200 <= status < 300:
            raise RetryLater(f"refund webhook answered HTTP {status}")


def _latest(*instants: datetime | None) -> datetime | None:
    present = [i for i in instants if i is not None]
    return max(present) if present else None
