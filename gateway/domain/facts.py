"""Plain facts the rules read: snapshots of vendor, order and ticket, no database behind them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from gateway.domain.support import SupportNeed


class Role(StrEnum):
    CUSTOMER = "customer"
    VENDOR = "vendor"
    STAFF = "staff"
    SYSTEM = "system"


class TicketType(StrEnum):
    REFUND = "refund"
    CANCELLATION = "cancellation"
    TECH_SUPPORT = "tech_support"


class Status(StrEnum):
    OPEN = "open"
    CLOSED = "closed"


class RefundKind(StrEnum):
    FULL = "full"
    AMOUNT = "amount"
    PERCENT = "percent"
    QUANTITY = "quantity"


class CloseReason(StrEnum):
    BY_CUSTOMER = "by_customer"
    BY_VENDOR = "by_vendor"
    BY_STAFF = "by_staff"
    PROCESSED = "processed"
    INACTIVE = "inactive"


class Action(StrEnum):
    REPLY = "reply"
    CLOSE = "close"
    REOPEN = "reopen"
    TECHSUPPORT = "techsupport"
    REFUND = "refund"
    FULL = "full"
    PARTIAL = "partial"  # by amount
    PERCENT = "percent"
    QUANTITY = "quantity"
    ESCALATE = "escalate"
    AGREE = "agree"
    DISPUTE = "dispute"
    RETURNED = "returned"


class DeadlineRule(StrEnum):
    """Why a ticket's process_at is what it is; stored beside the instant its clock started."""

    QUICK = "quick"  # +5 minutes (vendor-created, revoked vendor, Please Refund, dispute, same day)
    REVIEW = "review"  # +24 business hours
    SHIPPED = "shipped"  # +19 calendar days
    AWAIT_RETURN = "await_return"  # no deadline until the vendor acknowledges the return
    RETURNED = "returned"  # due at once


@dataclass(frozen=True)
class VendorFacts:
    zone: str = "UTC"
    may_respond: bool = True
    partial_refunds_enabled: bool = False
    dispute_count: int = 0


@dataclass(frozen=True)
class OrderFacts:
    purchased_at: datetime
    amount: Decimal
    kind: str = "digital"  # digital | physical
    recurring: bool = False
    quantity: int = 1
    latest_bill_at: datetime | None = None  # recurring: the most recent bill
    latest_bill_amount: Decimal | None = None
    refunded_amount: Decimal = Decimal("0")
    subscription_active: bool = False
    shipped: bool = False
    return_info: bool = False
    support_active: bool = True  # addons profile: an active support subscription
    # addons profile, tech support: the product, its shop and the subscriptions that could
    # cover it (None: not looked up; `support_active` decides)
    support: SupportNeed | None = None

    @property
    def window_start(self) -> datetime:
        """Windows count from the latest bill of a recurring product, else the purchase."""
        return self.latest_bill_at if self.recurring and self.latest_bill_at else self.purchased_at

    @property
    def refundable_base(self) -> Decimal:
        """What a full refund gives back before earlier refunds: the last bill when recurring."""
        if self.recurring and self.latest_bill_amount is not None:
            return self.latest_bill_amount
        return self.amount


@dataclass(frozen=True)
class TicketFacts:
    type: TicketType
    status: Status
    created_by: Role
    created_at: datetime
    refund_kind: RefundKind | None = None
    refund_value: Decimal | None = None
    escalated: bool = False
    awaiting_confirmation: bool = False
    # a vendor closed or changed a refund/cancellation without the customer's consent
    disputable_until: datetime | None = None
    close_reason: CloseReason | None = None
    last_activity_at: datetime | None = None
    last_activity_side: Role | None = None  # CUSTOMER or VENDOR (staff count as vendor side)
    warnings_sent: int = 0
    # the order's other open tickets: the type of each, with its number (the one a refusal
    # names: "this order already has an open refund ticket, #12")
    open_types: Mapping[TicketType, int] = field(default_factory=dict)
    deadline_rule: DeadlineRule | None = None  # the stored process_at rule, if any
    restore_type: TicketType | None = None  # what a dispute brings back after a vendor's change
