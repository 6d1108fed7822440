"""What a mail about a ticket shows of it, kept with the outbox row when the change happens.

SPEC 2: the worker renders a mail "from the history as of that event". A worker may render it
long after the change (it lagged, the relay was down, only the command line ran), when the
ticket has moved on: closed, converted, refunded. So the change's transaction writes what
the mail needs of the ticket, its order and its vendor into the row's payload (`state`), and
the worker renders from that and the event, never from the ticket as it is by then. A row
written before this existed has no `state`; it renders from the ticket as it is.

Writing it costs a dictionary of plain values (no query): the reply path of intake writes
one for each of its two mails.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import Any, Final, Protocol

from gateway.domain.clock import parse_instant
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
from gateway.domain.policy import Policy
from gateway.domain.rules import inactivity_step
from store.models import Ticket

STATE: Final = "state"  # the payload key


class TicketSource(Protocol):
    """What a snapshot reads of a ticket: a `Ticket`, or a `TicketRow` of intake."""

    @property
    def type(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def created_by(self) -> str: ...
    @property
    def reason(self) -> str | None: ...
    @property
    def problem(self) -> str | None: ...
    @property
    def refund_kind(self) -> str | None: ...
    @property
    def refund_value(self) -> Decimal | None: ...
    @property
    def refund_amount(self) -> Decimal | None: ...
    @property
    def process_rule(self) -> str | None: ...
    @property
    def process_at(self) -> datetime | None: ...
    @property
    def closed_at(self) -> datetime | None: ...
    @property
    def close_reason(self) -> str | None: ...
    @property
    def escalated(self) -> bool: ...
    @property
    def escalation_note(self) -> str | None: ...
    @property
    def awaiting_confirmation(self) -> bool: ...
    @property
    def disputable_until(self) -> datetime | None: ...
    @property
    def restore_type(self) -> str | None: ...
    @property
    def last_activity_at(self) -> datetime | None: ...
    @property
    def last_activity_side(self) -> str | None: ...
    @property
    def warnings_sent(self) -> int: ...
    @property
    def title(self) -> str | None: ...


class OrderSource(Protocol):
    """The order's columns that change while a ticket is open."""

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


class VendorSource(Protocol):
    """The vendor's columns that decide what it may do on a ticket."""

    @property
    def may_respond(self) -> bool: ...
    @property
    def partial_refunds_enabled(self) -> bool: ...
    @property
    def dispute_count(self) -> int: ...


_TICKET_TEXT = ("type", "status", "created_by", "reason", "problem", "refund_kind",
                "process_rule", "close_reason", "escalation_note", "restore_type",
                "last_activity_side", "title")
_TICKET_TIMES = ("process_at", "closed_at", "disputable_until", "last_activity_at")
_TICKET_MONEY = ("refund_value", "refund_amount")
_TICKET_PLAIN = ("escalated", "awaiting_confirmation", "warnings_sent")
_ORDER_PLAIN = ("subscription", "shipped", "return_info", "support_active")
_VENDOR_PLAIN = ("may_respond", "partial_refunds_enabled", "dispute_count")


def snapshot(ticket: TicketSource, order: OrderSource, vendor: VendorSource,
             at: datetime) -> dict[str, Any]:
    """The state of a ticket at `at` (the change's instant) as JSON-safe values."""
    # isoformat, not the contract's format_instant: this runs for every reply by mail, and
    # read() parses either
    state: dict[str, Any] = {"at": at.isoformat()}
    for name in _TICKET_TEXT + _TICKET_PLAIN:
        state[name] = getattr(ticket, name)
    for name in _TICKET_TIMES:
        value = getattr(ticket, name)
        state[name] = None if value is None else value.isoformat()
    for name in _TICKET_MONEY:
        value = getattr(ticket, name)
        state[name] = None if value is None else str(value)
    state["order"] = {name: getattr(order, name) for name in _ORDER_PLAIN}
    state["order"]["refunded_amount"] = str(order.refunded_amount)
    state["vendor"] = {name: getattr(vendor, name) for name in _VENDOR_PLAIN}
    return state


def of_ticket(ticket: Ticket, at: datetime) -> dict[str, Any]:
    """`snapshot` of a loaded ticket, its order and its vendor."""
    return snapshot(ticket, ticket.order, ticket.order.vendor, at)


def with_state(payload: dict[str, Any] | None, state: dict[str, Any] | None
               ) -> dict[str, Any] | None:
    """An outbox payload that carries `state` beside what the caller put in it."""
    if state is None:
        return payload
    return {**(payload or {}), STATE: state}


@dataclass(frozen=True)
class MailState:
    """A snapshot read back: the instant, the ticket's columns, and the rules' facts."""

    at: datetime
    columns: dict[str, Any]  # the ticket's columns by name, as a mail shows them
    refunded_amount: Decimal
    ticket: TicketFacts
    order_changes: dict[str, Any]  # OrderFacts fields that changed since the order was made
    vendor: VendorFacts


def read(state: dict[str, Any], created_at: datetime, zone: str) -> MailState:
    """A snapshot written by `snapshot`, with the ticket's creation instant and the vendor's
    zone (neither changes)."""
    columns: dict[str, Any] = {name: state.get(name) for name in _TICKET_TEXT + _TICKET_PLAIN}
    for name in _TICKET_TIMES:
        value = state.get(name)
        columns[name] = parse_instant(value) if value else None
    for name in _TICKET_MONEY:
        value = state.get(name)
        columns[name] = Decimal(value) if value is not None else None
    order = state.get("order") or {}
    vendor = state.get("vendor") or {}
    return MailState(
        at=parse_instant(state["at"]),
        columns=columns,
        refunded_amount=Decimal(order.get("refunded_amount") or "0"),
        ticket=_ticket_facts(columns, created_at),
        order_changes={
            "refunded_amount": Decimal(order.get("refunded_amount") or "0"),
            "subscription_active": order.get("subscription") == "active",
            "shipped": bool(order.get("shipped")),
            "return_info": bool(order.get("return_info")),
            "support_active": bool(order.get("support_active", True)),
        },
        vendor=VendorFacts(zone=zone, may_respond=bool(vendor.get("may_respond", True)),
                           partial_refunds_enabled=bool(vendor.get("partial_refunds_enabled")),
                           dispute_count=int(vendor.get("dispute_count") or 0)),
    )


def _ticket_facts(c: dict[str, Any], created_at: datetime) -> TicketFacts:
    return TicketFacts(
        type=TicketType(c["type"]), status=Status(c["status"]),
        created_by=Role(c["created_by"]), created_at=created_at,
        refund_kind=RefundKind(c["refund_kind"]) if c["refund_kind"] else None,
        refund_value=c["refund_value"], escalated=bool(c["escalated"]),
        awaiting_confirmation=bool(c["awaiting_confirmation"]),
        disputable_until=c["disputable_until"],
        close_reason=CloseReason(c["close_reason"]) if c["close_reason"] else None,
        last_activity_at=c["last_activity_at"],
        last_activity_side=Role(c["last_activity_side"]) if c["last_activity_side"] else None,
        warnings_sent=int(c["warnings_sent"] or 0),
        deadline_rule=DeadlineRule(c["process_rule"]) if c["process_rule"] else None,
        restore_type=TicketType(c["restore_type"]) if c["restore_type"] else None,
    )


def order_facts_at(static: OrderFacts, state: MailState) -> OrderFacts:
    """The order's facts at the snapshot: what does not change, with what did as it was."""
    return replace(static, **state.order_changes)


def auto_close_at(policy: Policy, ticket: TicketFacts, zone: str) -> datetime | None:
    """When an open tech-support ticket closes for inactivity if nobody writes first."""
    if (ticket.type is not TicketType.TECH_SUPPORT or ticket.status is not Status.OPEN
            or ticket.last_activity_at is None or ticket.last_activity_side is None):
        return None
    track = (policy.inactivity_customer_last if ticket.last_activity_side is Role.CUSTOMER
             else policy.inactivity_vendor_last)
    return inactivity_step(policy, ticket.last_activity_at, ticket.last_activity_side,
                           len(track.warnings), zone).due_at
