"""The ticket rules of SPEC 3-6 as pure functions of (facts, now). (Interface; bodies pending.)"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from gateway.domain.facts import (
    Action,
    DeadlineRule,
    OrderFacts,
    RefundKind,
    Role,
    TicketFacts,
    TicketType,
    VendorFacts,
)
from gateway.domain.policy import Policy


@dataclass(frozen=True)
class OpenDecision:
    """`convert` is True when a refund request turns the open tech-support ticket into a refund."""

    convert: bool


@dataclass(frozen=True)
class Deadline:
    rule: DeadlineRule
    started_at: datetime
    due_at: datetime | None  # None: waits (AWAIT_RETURN)


def check_open(policy: Policy, ticket_type: TicketType, role: Role, order: OrderFacts,
               vendor: VendorFacts, now: datetime,
               open_types: frozenset[TicketType]) -> OpenDecision:
    """May `role` open `ticket_type` on this order at `now`? Raise OutsideWindow/Conflict/Forbidden."""
    raise NotImplementedError


def open_deadline(policy: Policy, ticket_type: TicketType, opener: Role, order: OrderFacts,
                  vendor: VendorFacts, at: datetime) -> Deadline | None:
    """process_at for a refund/cancellation opened (or converted into) by `opener` at `at`."""
    raise NotImplementedError


def due_at(policy: Policy, rule: DeadlineRule, started_at: datetime, zone: str) -> datetime | None:
    """Recompute a stored deadline from its inputs (used after a vendor's zone change)."""
    raise NotImplementedError


def check_action(policy: Policy, action: Action, role: Role, ticket: TicketFacts,
                 order: OrderFacts, vendor: VendorFacts, now: datetime) -> None:
    """Raise Forbidden/Conflict with a sentence a person can act on when not allowed."""
    raise NotImplementedError


def allowed_actions(policy: Policy, role: Role, ticket: TicketFacts, order: OrderFacts,
                    vendor: VendorFacts, now: datetime) -> frozenset[Action]:
    raise NotImplementedError


def refund_amount(order: OrderFacts, kind: RefundKind, value: Decimal | None,
                  vendor: VendorFacts) -> Decimal:
    """Money a refund of this kind returns; never more than what is left unrefunded."""
    raise NotImplementedError
