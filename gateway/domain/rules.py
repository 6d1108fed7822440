"""The ticket rules of SPEC 3-6 and 11 as pure functions of (policy, facts, now).

Nothing here reads a clock or a database: every function is handed the instant it judges.
Errors are `Forbidden` (this role may never do it), `Conflict` (the ticket's or order's state
does not allow it now), `OutsideWindow` (too late for a refund) or `UserError` (a bad value),
each with a sentence the person can act on.

Decisions where the spec is silent:
- Refund windows: the customer's (60 days / 1 month) for customers, the vendor's (90 days /
  6 months) for vendors and staff; both count local dates in the vendor's zone from
  `order.window_start` (the latest bill of a recurring product). A refund is also refused
  (Conflict) when nothing is left unrefunded. The system role opens nothing.
- A request that could no longer execute (`check_executable`: a refund with nothing left, a
  cancellation of a subscription already cancelled) is refused wherever it would get a
  deadline: staff's reopen, the customer's dispute, a confirmation, Please Refund. Reopening
  counts as asking again (SPEC 11.4: a conversion counts as opening), and SPEC 3 lets no
  refund be asked of an order refunded in full; to keep talking, open a tech-support ticket.
- process_at: the physical-goods rows apply to refunds only (a cancellation stops future bills
  and returns no goods, so it gets +24 business hours). The same-day rule compares the request
  with the purchase date, as SPEC 4 says, also for recurring products.
- Actions on refund/cancellation tickets: the vendor may reply, close, change to tech support,
  Please Refund (`refund`), change the refund kind (refund tickets only), escalate, and
  acknowledge a return (`returned`, only while a return is awaited). A revoked vendor keeps
  Please Refund, escalate and returned (they only speed the customer's refund up or bring
  staff in) and loses reply, close, techsupport and the kind changes.
- Percent and quantity changes need no vendor setting; partial by amount needs
  `partial_refunds_enabled` for the vendor (staff are not bound by it).
- Tech-support tickets: anyone may reply and close; vendor and staff may escalate; the customer
  may turn the ticket into a refund (`refund`, within the customer's window), vendor and staff
  too (within the vendor's window). The vendor's is Please Refund (seed 003: "on any ticket"):
  the ticket becomes a refund that runs 5 minutes later, as if the vendor had opened it.
- Refund reasons are the policy's data (`refund_reasons`): under addons a customer must give
  `not_downloaded` or `malfunction`, the latter only when the order had a tech-support ticket
  before the request (seed 004); turning a tech-support ticket into a refund counts as that,
  and without a reason it is `malfunction`. Vendors and staff may also give `other`.
- Consent: `agree` and `dispute` are the customer's alone (not staff's) and need
  `disputable_until` set and not passed; both work on a closed ticket too (agreeing to a close
  just ends the dispute period).
- Closed tickets: only staff `reopen` and the customer's `agree`/`dispute`; follow-up replies
  are decided by the services (SPEC 11.9), so `reply` on a closed ticket is a Conflict here.
- A ticket awaiting confirmation of an unverified mail accepts no action except from staff.
- Refund amounts: rounded half-up to cents and capped at what is left; a refund that comes to
  0.00 is refused. What is left is `refundable_base - refunded_amount` (a recurring product's
  last bill, less what was refunded on the order).
- Inactivity: warnings go out whenever due; a close that would fall outside business time
  (including Saturday 00:00, the end of Friday) waits for Monday 00:00 in the vendor's zone,
  with or without the weekend pause. Staff and the system count on the vendor's side.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal

from gateway.domain.amounts import amount_left, check_refundable, refund_amount
from gateway.domain.calendar import (
    add_business_time,
    local_date,
    next_business_instant,
    same_local_day,
    zone_or_error,
)
from gateway.domain.clock import format_instant
from gateway.domain.errors import Conflict, Forbidden, OutsideWindow, UserError
from gateway.domain.facts import (
    Action,
    DeadlineRule,
    OrderFacts,
    Role,
    TicketType,
    VendorFacts,
)
from gateway.domain.policy import Policy, Window
from gateway.domain.reasons import CODES
from gateway.domain.support import check_support
from gateway.domain.texts import Text, _, ngettext

__all__ = ["amount_left", "refund_amount"]  # the amount rules, with the others here

KIND_ACTIONS = frozenset({Action.FULL, Action.PARTIAL, Action.PERCENT, Action.QUANTITY})


@dataclass(frozen=True)
class OpenDecision:
    """`convert` is True when a refund request turns the open tech-support ticket into a refund."""

    convert: bool


@dataclass(frozen=True)
class Deadline:
    rule: DeadlineRule
    started_at: datetime
    due_at: datetime | None  # None: waits (AWAIT_RETURN)


@dataclass(frozen=True)
class InactivityStep:
    """The next thing the inactivity sweep does to a tech-support ticket, and when."""

    kind: Literal["warning", "close"]
    due_at: datetime
    warnings_after: int  # warnings_sent once this step is done


# --- refund windows --------------------------------------------------------------------


def window_for(policy: Policy, role: Role) -> Window:
    """The customer's window for customers, the vendor's for vendors and staff."""
    return policy.customer_window if role is Role.CUSTOMER else policy.vendor_window


def window_last_date(policy: Policy, role: Role, order: OrderFacts, zone: str) -> date:
    """The last local date in `zone` (the vendor's) on which `role` may open a refund."""
    return window_for(policy, role).last_date(local_date(order.window_start, zone))


def window_closes_at(policy: Policy, role: Role, order: OrderFacts, zone: str) -> datetime:
    """The first instant (UTC) at which `role`'s refund window is over: local midnight after it."""
    last = window_last_date(policy, role, order, zone)
    midnight = datetime.combine(last + timedelta(days=1), time(), tzinfo=zone_or_error(zone))
    return midnight.astimezone(UTC)


def customer_window_end(policy: Policy, order: OrderFacts, zone: str) -> datetime:
    """The last whole second of the customer's refund window: the value for `disputable_until`
    after a vendor's close or change (SPEC 11.5), checked as `now <= disputable_until`."""
    return window_closes_at(policy, Role.CUSTOMER, order, zone) - timedelta(seconds=1)


def check_refund_window(policy: Policy, role: Role, order: OrderFacts, vendor: VendorFacts,
                        now: datetime) -> None:
    """Raise OutsideWindow when `role` may no longer open a refund on this order."""
    last = window_last_date(policy, role, order, vendor.zone)
    if local_date(now, vendor.zone) <= last:
        return
    window = window_for(policy, role)
    start = local_date(order.window_start, vendor.zone)
    billed = order.recurring and order.latest_bill_at is not None
    raise OutsideWindow(_window_refusal(role, billed, window, start.isoformat(),
                                        last.isoformat()))


def _window_refusal(role: Role, billed: bool, window: Window, start: str, last: str) -> Text:
    """Why a refund is too late, one whole sentence per case (who asks, from the sale or the
    bill, days or months), its words following the window's length in each language."""
    n, values = window.count, {"date": start, "until": last}
    if window.unit == "days":
        return _days_refusal(role, billed, n, values)
    return _months_refusal(role, billed, n, values)


def _days_refusal(role: Role, billed: bool, n: int, values: dict[str, str]) -> Text:
    if billed:
        if role is Role.CUSTOMER:
            return ngettext(
                "the latest bill was on %(date)s; customers may ask for a refund up to "
                "%(num)d day after the bill, that is until %(until)s",
                "the latest bill was on %(date)s; customers may ask for a refund up to "
                "%(num)d days after the bill, that is until %(until)s", n, **values)
        if role is Role.VENDOR:
            return ngettext(
                "the latest bill was on %(date)s; vendors may grant a refund up to %(num)d "
                "day after the bill, that is until %(until)s",
                "the latest bill was on %(date)s; vendors may grant a refund up to %(num)d "
                "days after the bill, that is until %(until)s", n, **values)
        return ngettext(
            "the latest bill was on %(date)s; refunds may be granted up to %(num)d day after "
            "the bill, that is until %(until)s",
            "the latest bill was on %(date)s; refunds may be granted up to %(num)d days after "
            "the bill, that is until %(until)s", n, **values)
    if role is Role.CUSTOMER:
        return ngettext(
            "this order was bought on %(date)s; customers may ask for a refund up to %(num)d "
            "day after the sale, that is until %(until)s",
            "this order was bought on %(date)s; customers may ask for a refund up to %(num)d "
            "days after the sale, that is until %(until)s", n, **values)
    if role is Role.VENDOR:
        return ngettext(
            "this order was bought on %(date)s; vendors may grant a refund up to %(num)d day "
            "after the sale, that is until %(until)s",
            "this order was bought on %(date)s; vendors may grant a refund up to %(num)d days "
            "after the sale, that is until %(until)s", n, **values)
    return ngettext(
        "this order was bought on %(date)s; refunds may be granted up to %(num)d day after "
        "the sale, that is until %(until)s",
        "this order was bought on %(date)s; refunds may be granted up to %(num)d days after "
        "the sale, that is until %(until)s", n, **values)


def _months_refusal(role: Role, billed: bool, n: int, values: dict[str, str]) -> Text:
    if billed:
        if role is Role.CUSTOMER:
            return ngettext(
                "the latest bill was on %(date)s; customers may ask for a refund up to "
                "%(num)d month after the bill, that is until %(until)s",
                "the latest bill was on %(date)s; customers may ask for a refund up to "
                "%(num)d months after the bill, that is until %(until)s", n, **values)
        if role is Role.VENDOR:
            return ngettext(
                "the latest bill was on %(date)s; vendors may grant a refund up to %(num)d "
                "month after the bill, that is until %(until)s",
                "the latest bill was on %(date)s; vendors may grant a refund up to %(num)d "
                "months after the bill, that is until %(until)s", n, **values)
        return ngettext(
            "the latest bill was on %(date)s; refunds may be granted up to %(num)d month "
            "after the bill, that is until %(until)s",
            "the latest bill was on %(date)s; refunds may be granted up to %(num)d months "
            "after the bill, that is until %(until)s", n, **values)
    if role is Role.CUSTOMER:
        return ngettext(
            "this order was bought on %(date)s; customers may ask for a refund up to %(num)d "
            "month after the sale, that is until %(until)s",
            "this order was bought on %(date)s; customers may ask for a refund up to %(num)d "
            "months after the sale, that is until %(until)s", n, **values)
    if role is Role.VENDOR:
        return ngettext(
            "this order was bought on %(date)s; vendors may grant a refund up to %(num)d "
            "month after the sale, that is until %(until)s",
            "this order was bought on %(date)s; vendors may grant a refund up to %(num)d "
            "months after the sale, that is until %(until)s", n, **values)
    return ngettext(
        "this order was bought on %(date)s; refunds may be granted up to %(num)d month after "
        "the sale, that is until %(until)s",
        "this order was bought on %(date)s; refunds may be granted up to %(num)d months "
        "after the sale, that is until %(until)s", n, **values)


def already_open(ticket_type: TicketType, number: int) -> Conflict:
    """The refusal of a second open ticket of one type on an order, naming the open one (one
    whole sentence per type, so each language can build its own compound)."""
    if ticket_type is TicketType.REFUND:
        text = _("this order already has an open refund ticket, #%(n)s; reply to that "
                 "ticket instead", n=number)
    elif ticket_type is TicketType.CANCELLATION:
        text = _("this order already has an open cancellation ticket, #%(n)s; reply to that "
                 "ticket instead", n=number)
    else:
        text = _("this order already has an open tech-support ticket, #%(n)s; reply to that "
                 "ticket instead", n=number)
    return Conflict(text, ticket=number)


# --- opening tickets -------------------------------------------------------------------


def check_request_time(at: datetime, now: datetime) -> None:
    """A request entered as made at `at` (staff typing in a phone call: `--at`) was made by
    `now`: one dated in the future would start its clocks before anything was asked."""
    if at > now:
        raise UserError(
            f"--at {format_instant(at)} is in the future (it is now {format_instant(now)}); "
            "--at records a request made earlier",
            code="invalid_value")


def check_open(policy: Policy, ticket_type: TicketType, role: Role, order: OrderFacts,
               vendor: VendorFacts, now: datetime,
               open_types: Mapping[TicketType, int]) -> OpenDecision:
    """May `role` open `ticket_type` on this order at `now`?

    Raise OutsideWindow, Conflict or Forbidden when not; `open_types` are the order's types
    with an open ticket, each with that ticket's number.
    """
    if role not in (Role.CUSTOMER, Role.VENDOR, Role.STAFF):
        raise Forbidden(f"tickets are opened by a customer, a vendor or staff, not by {role}")
    if ticket_type in open_types:
        raise already_open(ticket_type, open_types[ticket_type])
    if ticket_type is TicketType.REFUND:
        check_refundable(order)
        check_refund_window(policy, role, order, vendor, now)
        return OpenDecision(convert=TicketType.TECH_SUPPORT in open_types)
    if ticket_type is TicketType.CANCELLATION:
        _check_subscription(order)
    else:
        _check_support(policy, order, now)
    return OpenDecision(convert=False)


def check_executable(ticket_type: TicketType, order: OrderFacts) -> None:
    """Raise Conflict when a refund or cancellation of this order could not execute now:
    nothing is left to refund, or no subscription is left to cancel. Whatever sets a
    request's deadline checks this first (opening, reopening, a dispute, a confirmation,
    Please Refund), and the deadline processor checks it again before it executes."""
    if ticket_type is TicketType.REFUND:
        check_refundable(order)
    elif ticket_type is TicketType.CANCELLATION:
        _check_subscription(order)


def _check_subscription(order: OrderFacts) -> None:
    if not order.recurring:
        raise Conflict(_(
            "this order is not a subscription, so there is nothing to cancel; "
            "ask for a refund instead"
        ))
    if not order.subscription_active:
        raise Conflict(_("this subscription is already cancelled; no further bills will be "
                         "taken"))


def _check_support(policy: Policy, order: OrderFacts, now: datetime) -> None:
    if not policy.tech_support_needs_support_subscription:
        return
    if order.support is not None:
        check_support(order.support, now)
    elif not order.support_active:
        raise Conflict(_(
            "technical support for this product needs an active support subscription, and "
            "this order's has ended; renew the support subscription to open a support ticket"
        ))


# --- refund reasons --------------------------------------------------------------------


def refund_reasons(policy: Policy, role: Role) -> tuple[str, ...]:
    """The refund reason codes `role` may give under `policy` (the list a form offers)."""
    if role is Role.CUSTOMER and policy.customer_refund_reasons is not None:
        return policy.customer_refund_reasons
    return policy.refund_reasons


def reason_codes(policy: Policy, ticket_type: TicketType, role: Role) -> tuple[str, ...]:
    """The codes a form offers `role` for a new ticket of `ticket_type`."""
    if ticket_type is TicketType.REFUND:
        return refund_reasons(policy, role)
    return CODES[ticket_type]


def check_refund_reason(policy: Policy, role: Role, code: str | None, *, asked_support: bool,
                        converting: bool = False) -> str:
    """The reason code to store on a refund `role` asks for. `asked_support`: the order had
    a tech-support ticket before this request; `converting`: the request turns one into a
    refund, and without a reason it is for what that ticket was about (the first of
    `reasons_after_support`, `malfunction` under addons), else `other`."""
    allowed = refund_reasons(policy, role)
    if not code or not code.strip():
        if converting and policy.reasons_after_support:
            return policy.reasons_after_support[0]
        if role is Role.CUSTOMER and policy.reason_required:
            raise UserError(_("a refund request needs a reason, one of: %(reasons)s",
                              reasons=", ".join(allowed)), code="reason_required")
        return "other"
    code = code.strip().lower()
    if code not in allowed:
        raise UserError(_("unknown reason '%(reason)s' for a refund ticket; use one of: "
                          "%(reasons)s", reason=code, reasons=", ".join(allowed)),
                        code="invalid_reason")
    if role is Role.CUSTOMER and code in policy.reasons_after_support and not asked_support:
        raise Conflict(_(
            "a refund for the reason '%(reason)s' needs a tech-support request to the vendor "
            "first: open a tech-support ticket on this order so the vendor can help; if it "
            "cannot be fixed, ask for the refund on that ticket", reason=code),
            code="support_first")
    return code


# --- process_at ------------------------------------------------------------------------


def open_rule(ticket_type: TicketType, opener: Role, order: OrderFacts, vendor: VendorFacts,
              at: datetime) -> DeadlineRule:
    """Which process_at rule applies to a refund/cancellation opened at `at` (SPEC 11.4)."""
    if opener is Role.VENDOR or not vendor.may_respond:
        return DeadlineRule.QUICK
    if same_local_day(order.purchased_at, at, vendor.zone):
        return DeadlineRule.QUICK
    if ticket_type is TicketType.REFUND and order.kind == "physical":
        if not order.shipped:
            return DeadlineRule.REVIEW
        return DeadlineRule.AWAIT_RETURN if order.return_info else DeadlineRule.SHIPPED
    return DeadlineRule.REVIEW


def open_deadline(policy: Policy, ticket_type: TicketType, opener: Role, order: OrderFacts,
                  vendor: VendorFacts, at: datetime) -> Deadline | None:
    """process_at for a refund/cancellation opened (or converted into) by `opener` at `at`."""
    if ticket_type is TicketType.TECH_SUPPORT:
        return None
    rule = open_rule(ticket_type, opener, order, vendor, at)
    return Deadline(rule, at, due_at(policy, rule, at, vendor.zone))


def quick_deadline(policy: Policy, at: datetime) -> Deadline:
    """Please Refund, a customer's dispute, a revoked vendor: due 5 minutes (real time) later."""
    return Deadline(DeadlineRule.QUICK, at, at + policy.quick_delay)


def returned_deadline(at: datetime) -> Deadline:
    """The vendor acknowledged the returned goods: the refund is due at once."""
    return Deadline(DeadlineRule.RETURNED, at, at)


def due_at(policy: Policy, rule: DeadlineRule, started_at: datetime, zone: str) -> datetime | None:
    """Recompute a stored deadline from its inputs (used after a vendor's zone change)."""
    if rule is DeadlineRule.QUICK:
        return started_at + policy.quick_delay
    if rule is DeadlineRule.REVIEW:
        return add_business_time(started_at, policy.review_delay, zone,
                                 weekend_pause=policy.weekend_pause)
    if rule is DeadlineRule.SHIPPED:
        return started_at + policy.shipped_delay
    if rule is DeadlineRule.RETURNED:
        return started_at
    return None  # AWAIT_RETURN: waits for the vendor's acknowledgement


# --- tech-support inactivity -----------------------------------------------------------


def inactivity_step(policy: Policy, last_activity_at: datetime, last_side: Role,
                    warnings_sent: int, zone: str) -> InactivityStep:
    """The next warning or the auto-close of a tech-support ticket (SPEC 6)."""
    track = (policy.inactivity_customer_last if last_side is Role.CUSTOMER
             else policy.inactivity_vendor_last)
    if warnings_sent < len(track.warnings):
        due = add_business_time(last_activity_at, track.warnings[warnings_sent], zone,
                                weekend_pause=policy.weekend_pause)
        return InactivityStep("warning", due, warnings_sent + 1)
    due = add_business_time(last_activity_at, track.close_after, zone,
                            weekend_pause=policy.weekend_pause)
    # Auto-close only on business days, whatever the weekend-pause setting.
    return InactivityStep("close", next_business_instant(due, zone), warnings_sent)


# --- vendor disputes -------------------------------------------------------------------


def after_dispute(vendor: VendorFacts, policy: Policy) -> VendorFacts:
    """The vendor after one more disputed change; reaching the limit revokes may_respond."""
    count = vendor.dispute_count + 1
    return dataclasses.replace(
        vendor, dispute_count=count, may_respond=vendor.may_respond and count < policy.dispute_limit
    )


def restore_vendor(vendor: VendorFacts) -> VendorFacts:
    """Staff restore may_respond; the dispute count starts again (SPEC 11.5)."""
    return dataclasses.replace(vendor, may_respond=True, dispute_count=0)
