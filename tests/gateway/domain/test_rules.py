"""The ticket rules of SPEC 3-6 and 11.3-11.5, table by table, with their exact boundaries."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from decimal import ROUND_DOWN, Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from gateway.domain import actions, rules
from gateway.domain.errors import Conflict, Forbidden, OutsideWindow, UserError
from gateway.domain.facts import (
    Action,
    DeadlineRule,
    OrderFacts,
    RefundKind,
    Role,
    Status,
    TicketFacts,
    TicketType,
    VendorFacts,
)
from gateway.domain.policy import Policy, policy_for

BERLIN = "Europe/Berlin"
CLICKBANK = policy_for("clickbank")
ADDONS = policy_for("addons")
NO_PAUSE = policy_for("clickbank", weekend_pause=False)
A = Action
T = TicketType
R = DeadlineRule
C, V, S = Role.CUSTOMER, Role.VENDOR, Role.STAFF
EMPTY: dict[TicketType, int] = {}


def local(text: str, zone: str = BERLIN) -> datetime:
    """A wall time in `zone` (`2026-09-01 10:00`) as an aware UTC instant."""
    naive = datetime.fromisoformat(text)
    return naive.replace(tzinfo=ZoneInfo(zone)).astimezone(UTC)


def vendor(**changes: Any) -> VendorFacts:
    return dataclasses.replace(VendorFacts(zone=BERLIN), **changes)


def order(purchased: str = "2026-09-01 10:00", **changes: Any) -> OrderFacts:
    base = OrderFacts(purchased_at=local(purchased), amount=Decimal("47.00"))
    return dataclasses.replace(base, **changes)


def ticket(type_: TicketType = T.REFUND, **changes: Any) -> TicketFacts:
    base = TicketFacts(type=type_, status=Status.OPEN, created_by=C,
                       created_at=local("2026-09-10 10:00"))
    return dataclasses.replace(base, **changes)


# --- SPEC 3 and 11.3: who may open what, and the refund windows -------------------------

WINDOW_ROWS = [
    # policy, role, purchased (local), request (local), allowed
    (CLICKBANK, C, "2026-09-01 10:00", "2026-10-31 23:59", True),  # day 60
    (CLICKBANK, C, "2026-09-01 10:00", "2026-11-01 00:00", False),  # day 61
    (CLICKBANK, C, "2026-09-01 23:59", "2026-11-01 00:01", False),  # day 61, hours don't matter
    (CLICKBANK, V, "2026-09-01 10:00", "2026-11-30 23:59", True),  # day 90
    (CLICKBANK, V, "2026-09-01 10:00", "2026-12-01 00:00", False),  # day 91
    (CLICKBANK, S, "2026-09-01 10:00", "2026-11-30 23:59", True),  # staff: the vendor's window
    (CLICKBANK, S, "2026-09-01 10:00", "2026-12-01 00:00", False),
    (CLICKBANK, C, "2026-09-01 10:00", "2026-09-01 10:00", True),  # day 0
    (ADDONS, C, "2026-01-31 10:00", "2026-02-28 23:59", True),  # 1 month, clamped
    (ADDONS, C, "2026-01-31 10:00", "2026-03-01 00:00", False),
    (ADDONS, C, "2026-03-15 10:00", "2026-04-15 23:59", True),
    (ADDONS, C, "2026-03-15 10:00", "2026-04-16 00:00", False),
    (ADDONS, V, "2026-01-31 10:00", "2026-07-31 23:59", True),  # 6 months
    (ADDONS, V, "2026-01-31 10:00", "2026-08-01 00:00", False),
    (ADDONS, S, "2026-08-31 10:00", "2027-02-28 12:00", True),
    (ADDONS, S, "2026-08-31 10:00", "2027-03-01 00:00", False),
]


@pytest.mark.parametrize(("policy", "role", "purchased", "now", "allowed"), WINDOW_ROWS)
def test_refund_windows(policy: Policy, role: Role, purchased: str, now: str,
                        allowed: bool) -> None:
    facts = order(purchased)
    if allowed:
        decision = rules.check_open(policy, T.REFUND, role, facts, vendor(), local(now), EMPTY)
        assert decision == rules.OpenDecision(convert=False)
    else:
        with pytest.raises(OutsideWindow):
            rules.check_open(policy, T.REFUND, role, facts, vendor(), local(now), EMPTY)


def test_window_message_is_actionable() -> None:
    with pytest.raises(OutsideWindow) as caught:
        rules.check_open(CLICKBANK, T.REFUND, C, order("2026-09-01 10:00"), vendor(),
                         local("2026-11-28 12:00"), EMPTY)
    assert caught.value.message == (
        "this order was bought on 2026-09-01; customers may ask for a refund up to 60 days "
        "after the sale, that is until 2026-10-31"
    )


def test_window_message_names_vendor_window_and_month_end() -> None:
    with pytest.raises(OutsideWindow) as caught:
        rules.check_open(ADDONS, T.REFUND, V, order("2026-01-31 10:00"), vendor(),
                         local("2026-08-01 09:00"), EMPTY)
    assert caught.value.message == (
        "this order was bought on 2026-01-31; vendors may grant a refund up to 6 months after "
        "the sale, that is until 2026-07-31"
    )


def test_window_counts_dates_in_the_vendor_zone() -> None:
    # 10:00 in Los Angeles on Sep 1 is Sep 1 in UTC; 20:00 on Oct 31 there is already Nov 1
    # in UTC (day 61 by UTC dates), but it is day 60 for the vendor.
    la = "America/Los_Angeles"
    facts = order(purchased_at=local("2026-09-01 10:00", la))
    rules.check_open(CLICKBANK, T.REFUND, C, facts, vendor(zone=la),
                     local("2026-10-31 20:00", la), EMPTY)
    with pytest.raises(OutsideWindow):
        rules.check_open(CLICKBANK, T.REFUND, C, facts, vendor(zone=la),
                         local("2026-11-01 00:00", la), EMPTY)


def test_recurring_window_counts_from_the_latest_bill() -> None:
    facts = order("2026-01-10 10:00", recurring=True, subscription_active=True,
                  latest_bill_at=local("2026-09-01 10:00"), latest_bill_amount=Decimal("9.99"))
    rules.check_open(CLICKBANK, T.REFUND, C, facts, vendor(), local("2026-10-31 23:00"), EMPTY)
    with pytest.raises(OutsideWindow) as caught:
        rules.check_open(CLICKBANK, T.REFUND, C, facts, vendor(), local("2026-11-01 08:00"),
                         EMPTY)
    assert caught.value.message.startswith("the latest bill was on 2026-09-01; customers")
    assert caught.value.message.endswith("60 days after the bill, that is until 2026-10-31")


def test_refund_converts_open_tech_support() -> None:
    decision = rules.check_open(CLICKBANK, T.REFUND, C, order(), vendor(),
                                local("2026-09-20 10:00"), {T.TECH_SUPPORT: 3})
    assert decision.convert is True


def test_conversion_is_still_subject_to_the_window() -> None:
    with pytest.raises(OutsideWindow):
        rules.check_open(CLICKBANK, T.REFUND, C, order(), vendor(),
                         local("2026-11-01 10:00"), {T.TECH_SUPPORT: 3})
    # the vendor's window is longer
    decision = rules.check_open(CLICKBANK, T.REFUND, V, order(), vendor(),
                                local("2026-11-01 10:00"), {T.TECH_SUPPORT: 3})
    assert decision.convert is True


@pytest.mark.parametrize("type_", list(TicketType))
def test_one_open_ticket_of_each_type(type_: TicketType) -> None:
    facts = order(recurring=True, subscription_active=True)
    with pytest.raises(Conflict, match=r"already has an open .*ticket, #7;") as caught:
        rules.check_open(CLICKBANK, type_, C, facts, vendor(), local("2026-09-02 10:00"),
                         {type_: 7})
    assert caught.value.ticket == 7  # the page links the ticket the refusal names
    others = {other: 8 for other in TicketType if other is not type_}
    decision = rules.check_open(CLICKBANK, type_, C, facts, vendor(), local("2026-09-02 10:00"),
                                others)
    assert decision.convert is (type_ is T.REFUND)


@pytest.mark.parametrize("role", [C, V, S])
def test_cancellation_needs_an_active_subscription(role: Role) -> None:
    late = local("2027-06-01 10:00")  # no window for cancellations
    active = order(recurring=True, subscription_active=True)
    assert not rules.check_open(CLICKBANK, T.CANCELLATION, role, active, vendor(), late,
                                EMPTY).convert
    with pytest.raises(Conflict, match="not a subscription"):
        rules.check_open(CLICKBANK, T.CANCELLATION, role, order(), vendor(), late, EMPTY)
    cancelled = order(recurring=True, subscription_active=False)
    with pytest.raises(Conflict, match="already cancelled"):
        rules.check_open(CLICKBANK, T.CANCELLATION, role, cancelled, vendor(), late, EMPTY)


@pytest.mark.parametrize("role", [C, V, S])
def test_tech_support_on_any_order(role: Role) -> None:
    old = local("2029-01-01 10:00")
    rules.check_open(CLICKBANK, T.TECH_SUPPORT, role, order(), vendor(), old, EMPTY)
    rules.check_open(CLICKBANK, T.TECH_SUPPORT, role, order(support_active=False), vendor(), old,
                     EMPTY)


def test_addons_tech_support_needs_a_support_subscription() -> None:
    now = local("2026-09-02 10:00")
    rules.check_open(ADDONS, T.TECH_SUPPORT, C, order(), vendor(), now, EMPTY)
    with pytest.raises(Conflict, match="support subscription"):
        rules.check_open(ADDONS, T.TECH_SUPPORT, C, order(support_active=False), vendor(), now,
                         EMPTY)


def test_system_opens_nothing() -> None:
    with pytest.raises(Forbidden):
        rules.check_open(CLICKBANK, T.TECH_SUPPORT, Role.SYSTEM, order(), vendor(),
                         local("2026-09-02 10:00"), EMPTY)


def test_refund_of_a_fully_refunded_order_is_a_conflict() -> None:
    with pytest.raises(Conflict, match="nothing left"):
        rules.check_open(CLICKBANK, T.REFUND, V, order(refunded_amount=Decimal("47.00")),
                         vendor(), local("2026-09-02 10:00"), EMPTY)


def test_customer_window_end_is_the_last_second_of_day_60() -> None:
    end = rules.customer_window_end(CLICKBANK, order(), BERLIN)
    assert end == local("2026-10-31 23:59:59")
    assert rules.customer_window_end(ADDONS, order("2026-01-31 10:00"), BERLIN) == local(
        "2026-02-28 23:59:59")
    assert rules.window_closes_at(CLICKBANK, V, order(), BERLIN) == local("2026-12-01 00:00")


# --- SPEC 4 and 11.4: process_at ---------------------------------------------------------

MINUTES_5 = timedelta(minutes=5)

DEADLINE_ROWS = [
    # id, type, opener, order changes, vendor changes, purchased, request, rule, due (local)
    ("customer digital, later day", T.REFUND, C, {}, {}, "2026-09-01 10:00",
     "2026-09-10 10:00", R.REVIEW, "2026-09-11 10:00"),
    ("staff digital, later day", T.REFUND, S, {}, {}, "2026-09-01 10:00",
     "2026-09-11 16:00", R.REVIEW, "2026-09-14 16:00"),
    ("customer cancellation", T.CANCELLATION, C, {"recurring": True}, {}, "2026-09-01 10:00",
     "2026-09-12 10:00", R.REVIEW, "2026-09-15 00:00"),
    ("same local day", T.REFUND, C, {}, {}, "2026-09-01 00:10",
     "2026-09-01 23:50", R.QUICK, "2026-09-01 23:55"),
    ("23:30 then 00:10 next day is not the same day", T.REFUND, C, {}, {}, "2026-09-01 23:30",
     "2026-09-02 00:10", R.REVIEW, "2026-09-03 00:10"),
    ("vendor-created", T.REFUND, V, {}, {}, "2026-09-01 10:00",
     "2026-09-10 10:00", R.QUICK, "2026-09-10 10:05"),
    ("vendor-created cancellation", T.CANCELLATION, V, {"recurring": True}, {},
     "2026-09-01 10:00", "2026-09-12 10:00", R.QUICK, "2026-09-12 10:05"),
    ("revoked vendor", T.REFUND, C, {}, {"may_respond": False}, "2026-09-01 10:00",
     "2026-09-10 10:00", R.QUICK, "2026-09-10 10:05"),
    ("physical, not shipped, same day", T.REFUND, C, {"kind": "physical"}, {},
     "2026-09-01 10:00", "2026-09-01 18:00", R.QUICK, "2026-09-01 18:05"),
    ("physical, not shipped, later day", T.REFUND, C, {"kind": "physical"}, {},
     "2026-09-01 10:00", "2026-09-11 16:00", R.REVIEW, "2026-09-14 16:00"),
    ("physical, shipped, no return info", T.REFUND, C, {"kind": "physical", "shipped": True}, {},
     "2026-09-01 10:00", "2026-09-10 10:00", R.SHIPPED, "2026-09-29 10:00"),
    ("physical, shipped, return info", T.REFUND, C,
     {"kind": "physical", "shipped": True, "return_info": True}, {},
     "2026-09-01 10:00", "2026-09-10 10:00", R.AWAIT_RETURN, None),
    # precedence: the first matching row wins
    ("vendor-created beats shipped", T.REFUND, V, {"kind": "physical", "shipped": True}, {},
     "2026-09-01 10:00", "2026-09-10 10:00", R.QUICK, "2026-09-10 10:05"),
    ("revoked beats return info", T.REFUND, C,
     {"kind": "physical", "shipped": True, "return_info": True}, {"may_respond": False},
     "2026-09-01 10:00", "2026-09-10 10:00", R.QUICK, "2026-09-10 10:05"),
    ("same day beats shipped", T.REFUND, C, {"kind": "physical", "shipped": True}, {},
     "2026-09-01 10:00", "2026-09-01 19:00", R.QUICK, "2026-09-01 19:05"),
    ("cancellation ignores shipping", T.CANCELLATION, C,
     {"kind": "physical", "shipped": True, "recurring": True}, {},
     "2026-09-01 10:00", "2026-09-10 10:00", R.REVIEW, "2026-09-11 10:00"),
]


@pytest.mark.parametrize(
    ("type_", "opener", "order_changes", "vendor_changes", "purchased", "at", "rule", "due"),
    [row[1:] for row in DEADLINE_ROWS], ids=[row[0] for row in DEADLINE_ROWS],
)
def test_open_deadline(type_: TicketType, opener: Role, order_changes: dict[str, Any],
                       vendor_changes: dict[str, Any], purchased: str, at: str,
                       rule: DeadlineRule, due: str | None) -> None:
    deadline = rules.open_deadline(CLICKBANK, type_, opener, order(purchased, **order_changes),
                                   vendor(**vendor_changes), local(at))
    assert deadline == rules.Deadline(rule, local(at), local(due) if due else None)


REFERENCE_ROWS = [
    # SPEC 4's reference table, vendor in Europe/Berlin (week of Mon 2026-09-07)
    ("2026-09-10 10:00", "2026-09-11 10:00"),  # Thu -> Fri
    ("2026-09-11 16:00", "2026-09-14 16:00"),  # Fri -> Mon
    ("2026-09-12 10:00", "2026-09-15 00:00"),  # Sat -> Tue 00:00
    ("2026-10-23 16:00", "2026-10-26 16:00"),  # Fri before clocks go back -> Mon, wall time
]


@pytest.mark.parametrize(("created", "due"), REFERENCE_ROWS)
def test_review_follows_the_reference_table(created: str, due: str) -> None:
    deadline = rules.open_deadline(CLICKBANK, T.REFUND, C, order(), vendor(), local(created))
    assert deadline is not None and deadline.due_at == local(due)


def test_clocks_going_back_add_one_real_hour() -> None:
    deadline = rules.open_deadline(CLICKBANK, T.REFUND, C, order(), vendor(),
                                   local("2026-10-23 16:00"))
    assert deadline is not None and deadline.due_at is not None
    assert deadline.due_at - deadline.started_at == timedelta(hours=73)


def test_shipped_goods_wait_19_real_days_across_weekends_and_clock_changes() -> None:
    at = local("2026-10-16 10:00")
    deadline = rules.open_deadline(CLICKBANK, T.REFUND, C,
                                   order(kind="physical", shipped=True), vendor(), at)
    assert deadline is not None
    assert deadline.due_at == at + timedelta(days=19)
    assert deadline.due_at == local("2026-11-04 09:00")  # one hour earlier on the wall clock


def test_quick_is_five_real_minutes_even_at_the_weekend() -> None:
    at = local("2026-09-12 23:58")  # Saturday
    assert rules.quick_deadline(CLICKBANK, at) == rules.Deadline(R.QUICK, at, at + MINUTES_5)


def test_returned_is_due_at_once() -> None:
    at = local("2026-09-12 10:00")
    assert rules.returned_deadline(at) == rules.Deadline(R.RETURNED, at, at)


def test_tech_support_has_no_deadline() -> None:
    assert rules.open_deadline(CLICKBANK, T.TECH_SUPPORT, C, order(), vendor(),
                               local("2026-09-10 10:00")) is None


def test_without_weekend_pause_review_is_24_real_hours() -> None:
    at = local("2026-09-11 16:00")  # Friday
    deadline = rules.open_deadline(NO_PAUSE, T.REFUND, C, order(), vendor(), at)
    assert deadline is not None and deadline.due_at == local("2026-09-12 16:00")


def test_conversion_counts_as_opening_at_that_instant() -> None:
    # a customer converting tech support on a later day: +24 business hours from the conversion
    converted = local("2026-09-11 16:00")
    deadline = rules.open_deadline(CLICKBANK, T.REFUND, C, order(), vendor(), converted)
    assert deadline == rules.Deadline(R.REVIEW, converted, local("2026-09-14 16:00"))


@pytest.mark.parametrize(
    ("rule", "due"),
    [(R.QUICK, "2026-09-11 16:05"), (R.REVIEW, "2026-09-14 16:00"),
     (R.SHIPPED, "2026-09-30 16:00"), (R.RETURNED, "2026-09-11 16:00"), (R.AWAIT_RETURN, None)],
)
def test_due_at_recomputes_from_stored_inputs(rule: DeadlineRule, due: str | None) -> None:
    started = local("2026-09-11 16:00")
    assert rules.due_at(CLICKBANK, rule, started, BERLIN) == (local(due) if due else None)


def test_a_zone_change_moves_a_review_deadline() -> None:
    started = local("2026-09-11 20:00")  # Fri 20:00 in Berlin, Fri 14:00 in New York
    assert rules.due_at(CLICKBANK, R.REVIEW, started, BERLIN) == local("2026-09-14 20:00")
    new_york = "America/New_York"
    assert rules.due_at(CLICKBANK, R.REVIEW, started, new_york) == local(
        "2026-09-14 14:00", new_york)


# --- SPEC 6: tech-support inactivity ----------------------------------------------------

INACTIVITY_ROWS = [
    # id, policy, last side, last activity (local), warnings sent, kind, due (local), after
    ("customer: warning 1 at 48 business hours", CLICKBANK, C, "2026-09-07 10:00", 0,
     "warning", "2026-09-09 10:00", 1),
    ("customer: warning 2 at 4 business days", CLICKBANK, C, "2026-09-07 10:00", 1,
     "warning", "2026-09-11 10:00", 2),
    ("customer: close at 6 business days", CLICKBANK, C, "2026-09-07 10:00", 2,
     "close", "2026-09-15 10:00", 2),
    ("customer on Friday: the weekend does not count", CLICKBANK, C, "2026-09-11 16:00", 0,
     "warning", "2026-09-15 16:00", 1),
    ("customer at the weekend: counts from Monday 00:00", CLICKBANK, C, "2026-09-12 10:00", 1,
     "warning", "2026-09-18 00:00", 2),
    ("vendor: warning at 7 business days", CLICKBANK, V, "2026-09-07 10:00", 0,
     "warning", "2026-09-16 10:00", 1),
    ("vendor: close at 14 business days", CLICKBANK, V, "2026-09-07 10:00", 1,
     "close", "2026-09-25 10:00", 1),
    ("staff count as the vendor side", CLICKBANK, S, "2026-09-07 10:00", 0,
     "warning", "2026-09-16 10:00", 1),
    ("a close at Saturday 00:00 waits for Monday", CLICKBANK, V, "2026-09-08 00:00", 1,
     "close", "2026-09-28 00:00", 1),
    ("no pause: warnings in real time", NO_PAUSE, C, "2026-09-10 10:00", 0,
     "warning", "2026-09-12 10:00", 1),
    ("no pause: a Sunday close moves to Monday 00:00", NO_PAUSE, C, "2026-09-07 10:00", 2,
     "close", "2026-09-14 00:00", 2),
    ("no pause: a weekday close stays", NO_PAUSE, C, "2026-09-09 10:00", 2,
     "close", "2026-09-15 10:00", 2),
]


@pytest.mark.parametrize(
    ("policy", "side", "last", "sent", "kind", "due", "after"),
    [row[1:] for row in INACTIVITY_ROWS], ids=[row[0] for row in INACTIVITY_ROWS],
)
def test_inactivity_schedule(policy: Policy, side: Role, last: str, sent: int, kind: str,
                             due: str, after: int) -> None:
    step = rules.inactivity_step(policy, local(last), side, sent, BERLIN)
    assert (step.kind, step.due_at, step.warnings_after) == (kind, local(due), after)


def test_vendor_side_has_one_warning_then_close() -> None:
    last = local("2026-09-07 10:00")
    assert rules.inactivity_step(CLICKBANK, last, V, 1, BERLIN).kind == "close"
    assert rules.inactivity_step(CLICKBANK, last, V, 5, BERLIN).kind == "close"


# --- SPEC 5 and 11.5: actions -------------------------------------------------------------

NOW = local("2026-09-10 12:00")
REQUEST_BASE = {A.REPLY, A.CLOSE, A.TECHSUPPORT}
VENDOR_ON_REFUND = REQUEST_BASE | {A.REFUND, A.FULL, A.PERCENT, A.ESCALATE}
STAFF_ON_REFUND = VENDOR_ON_REFUND | {A.PARTIAL}

SUBSCRIBED = {"recurring": True, "subscription_active": True}
REFUNDED = {"refunded_amount": Decimal("47.00")}

ACTION_ROWS = [
    # id, role, ticket changes, order changes, vendor changes, allowed actions
    ("customer on refund", C, {}, {}, {}, REQUEST_BASE),
    ("vendor on refund", V, {}, {}, {}, VENDOR_ON_REFUND),
    ("vendor with partial refunds", V, {}, {}, {"partial_refunds_enabled": True},
     VENDOR_ON_REFUND | {A.PARTIAL}),
    ("vendor, quantity 3", V, {}, {"quantity": 3}, {}, VENDOR_ON_REFUND | {A.QUANTITY}),
    ("staff on refund", S, {}, {}, {}, STAFF_ON_REFUND),
    ("vendor, return awaited", V, {"deadline_rule": R.AWAIT_RETURN},
     {"kind": "physical", "shipped": True, "return_info": True}, {},
     VENDOR_ON_REFUND | {A.RETURNED}),
    ("staff, return awaited (inferred from the order)", S, {},
     {"kind": "physical", "shipped": True, "return_info": True}, {},
     STAFF_ON_REFUND | {A.RETURNED}),
    ("vendor, return already acknowledged", V, {"deadline_rule": R.RETURNED},
     {"kind": "physical", "shipped": True, "return_info": True}, {}, VENDOR_ON_REFUND),
    ("revoked vendor on refund", V, {}, {}, {"may_respond": False}, {A.REFUND, A.ESCALATE}),
    ("escalated refund", V, {"escalated": True}, {}, {}, VENDOR_ON_REFUND - {A.ESCALATE}),
    ("customer on cancellation", C, {"type": T.CANCELLATION}, SUBSCRIBED, {},
     REQUEST_BASE),
    ("vendor on cancellation", V, {"type": T.CANCELLATION}, SUBSCRIBED, {},
     REQUEST_BASE | {A.REFUND, A.ESCALATE}),
    ("staff on cancellation", S, {"type": T.CANCELLATION}, SUBSCRIBED, {},
     REQUEST_BASE | {A.REFUND, A.ESCALATE}),
    ("revoked vendor on cancellation", V, {"type": T.CANCELLATION}, SUBSCRIBED,
     {"may_respond": False}, {A.REFUND, A.ESCALATE}),
    # a request that could no longer execute gets no deadline: no Please Refund, no reopen,
    # no dispute that would bring it back
    ("vendor on cancellation, subscription already cancelled", V, {"type": T.CANCELLATION},
     {"recurring": True}, {}, REQUEST_BASE | {A.ESCALATE}),
    ("vendor on refund, order refunded in full", V, {}, REFUNDED, {},
     REQUEST_BASE | {A.ESCALATE}),
    ("staff on a closed refund, order refunded in full", S, {"status": Status.CLOSED},
     REFUNDED, {}, set()),
    ("staff on a closed cancellation, subscription cancelled", S,
     {"type": T.CANCELLATION, "status": Status.CLOSED}, {"recurring": True}, {}, set()),
    ("staff on a closed cancellation, subscription active", S,
     {"type": T.CANCELLATION, "status": Status.CLOSED}, SUBSCRIBED, {}, {A.REOPEN}),
    ("staff on a closed tech-support ticket, order refunded in full", S,
     {"type": T.TECH_SUPPORT, "status": Status.CLOSED}, REFUNDED, {}, {A.REOPEN}),
    ("customer, refund changed to tech support, order since refunded", C,
     {"type": T.TECH_SUPPORT, "disputable_until": NOW, "restore_type": T.REFUND}, REFUNDED, {},
     {A.REPLY, A.CLOSE, A.AGREE}),
    ("customer, cancellation closed by the vendor, subscription since cancelled", C,
     {"type": T.CANCELLATION, "status": Status.CLOSED,
      "disputable_until": NOW + timedelta(days=20)}, {"recurring": True}, {}, {A.AGREE}),
    ("customer on tech support", C, {"type": T.TECH_SUPPORT}, {}, {},
     {A.REPLY, A.CLOSE, A.REFUND}),
    ("vendor on tech support", V, {"type": T.TECH_SUPPORT}, {}, {},
     {A.REPLY, A.CLOSE, A.ESCALATE, A.REFUND}),  # Please Refund on any ticket (seed 003)
    ("revoked vendor on tech support", V, {"type": T.TECH_SUPPORT}, {}, {"may_respond": False},
     {A.REPLY, A.CLOSE, A.ESCALATE, A.REFUND}),
    ("staff on tech support", S, {"type": T.TECH_SUPPORT}, {}, {},
     {A.REPLY, A.CLOSE, A.ESCALATE, A.REFUND}),
    ("customer, tech support while a refund is open", C,
     {"type": T.TECH_SUPPORT, "open_types": {T.REFUND: 9}}, {}, {}, {A.REPLY, A.CLOSE}),
    ("customer, tech support after the window", C, {"type": T.TECH_SUPPORT},
     {"purchased_at": local("2026-07-01 10:00")}, {}, {A.REPLY, A.CLOSE}),
    ("staff, tech support after the customer's window", S, {"type": T.TECH_SUPPORT},
     {"purchased_at": local("2026-07-01 10:00")}, {}, {A.REPLY, A.CLOSE, A.ESCALATE, A.REFUND}),
    ("customer, tech support changed by the vendor", C,
     {"type": T.TECH_SUPPORT, "disputable_until": NOW}, {}, {},
     {A.REPLY, A.CLOSE, A.REFUND, A.AGREE, A.DISPUTE}),
    ("customer, dispute time passed", C,
     {"type": T.TECH_SUPPORT, "disputable_until": NOW - timedelta(seconds=1)}, {}, {},
     {A.REPLY, A.CLOSE, A.REFUND}),
    ("customer on a closed ticket", C, {"status": Status.CLOSED}, {}, {}, set()),
    ("vendor on a closed ticket", V, {"status": Status.CLOSED}, {}, {}, set()),
    ("staff on a closed ticket", S, {"status": Status.CLOSED}, {}, {}, {A.REOPEN}),
    ("customer, closed by the vendor", C,
     {"status": Status.CLOSED, "disputable_until": NOW + timedelta(days=20)}, {}, {},
     {A.AGREE, A.DISPUTE}),
    ("vendor, closed by the vendor", V,
     {"status": Status.CLOSED, "disputable_until": NOW + timedelta(days=20)}, {}, {}, set()),
    ("customer, awaiting confirmation", C, {"awaiting_confirmation": True}, {}, {}, set()),
    ("vendor, awaiting confirmation", V, {"awaiting_confirmation": True}, {}, {}, set()),
    ("staff, awaiting confirmation", S, {"awaiting_confirmation": True}, {}, {}, STAFF_ON_REFUND),
    ("system", Role.SYSTEM, {}, {}, {}, set()),
]


@pytest.mark.parametrize(
    ("role", "ticket_changes", "order_changes", "vendor_changes", "allowed"),
    [row[1:] for row in ACTION_ROWS], ids=[row[0] for row in ACTION_ROWS],
)
def test_action_matrix(role: Role, ticket_changes: dict[str, Any],
                       order_changes: dict[str, Any], vendor_changes: dict[str, Any],
                       allowed: set[Action]) -> None:
    facts = ticket(**ticket_changes)
    result = actions.allowed_actions(CLICKBANK, role, facts, order(**order_changes),
                                   vendor(**vendor_changes), NOW)
    assert result == frozenset(allowed)


ERROR_ROWS = [
    # id, action, role, ticket changes, order changes, vendor changes, error, message part
    ("customer changes the kind", A.PERCENT, C, {}, {}, {}, Forbidden, "vendor or staff"),
    ("customer escalates", A.ESCALATE, C, {}, {}, {}, Forbidden, "only the vendor"),
    ("customer reopens", A.REOPEN, C, {"status": Status.CLOSED}, {}, {}, Forbidden,
     "only staff"),
    ("customer acknowledges a return", A.RETURNED, C, {}, {}, {}, Forbidden, "vendor or staff"),
    ("vendor reopens", A.REOPEN, V, {"status": Status.CLOSED}, {}, {}, Forbidden, "only staff"),
    ("vendor disputes", A.DISPUTE, V, {"disputable_until": NOW}, {}, {}, Forbidden,
     "only the customer"),
    ("staff agrees for the customer", A.AGREE, S, {"disputable_until": NOW}, {}, {}, Forbidden,
     "only the customer"),
    ("system closes", A.CLOSE, Role.SYSTEM, {}, {}, {}, Forbidden, "system"),
    ("partial without the setting", A.PARTIAL, V, {}, {}, {}, Forbidden, "not enabled"),
    ("revoked vendor replies", A.REPLY, V, {}, {}, {"may_respond": False, "dispute_count": 2},
     Forbidden, "revoked after 2 disputed changes"),
    ("revoked vendor closes", A.CLOSE, V, {}, {}, {"may_respond": False}, Forbidden, "revoked"),
    ("revoked vendor changes the kind", A.PERCENT, V, {}, {}, {"may_respond": False}, Forbidden,
     "revoked"),
    ("revoked vendor changes to tech support", A.TECHSUPPORT, V, {"type": T.CANCELLATION},
     {"recurring": True}, {"may_respond": False}, Forbidden, "revoked"),
    ("staff reopens an open ticket", A.REOPEN, S, {}, {}, {}, Conflict, "open"),
    ("reply on a closed ticket", A.REPLY, V, {"status": Status.CLOSED}, {}, {}, Conflict,
     "closed"),
    ("quantity of one", A.QUANTITY, V, {}, {}, {}, Conflict, "quantity of 1"),
    ("kind change on a cancellation", A.FULL, V, {"type": T.CANCELLATION}, SUBSCRIBED,
     {}, Conflict, "cancellation has no refund kind"),
    ("kind change on tech support", A.PERCENT, V, {"type": T.TECH_SUPPORT}, {}, {}, Conflict,
     "turn it into a refund"),
    ("nothing left to refund", A.PERCENT, V, {}, {"refunded_amount": Decimal("47.00")}, {},
     Conflict, "nothing left"),
    ("no return awaited", A.RETURNED, V, {}, {}, {}, Conflict, "no returned goods"),
    ("return on a cancellation", A.RETURNED, V, {"type": T.CANCELLATION},
     {"recurring": True, "kind": "physical", "shipped": True, "return_info": True}, {}, Conflict,
     "no returned goods"),
    ("escalated twice", A.ESCALATE, V, {"escalated": True}, {}, {}, Conflict, "already"),
    ("customer asks again for a refund", A.REFUND, C, {}, {}, {}, Conflict, "already asks"),
    ("customer asks for a refund on a cancellation", A.REFUND, C, {"type": T.CANCELLATION},
     {"recurring": True}, {}, Conflict, "receipt page"),
    ("vendor Please Refund on tech support after the vendor's window", A.REFUND, V,
     {"type": T.TECH_SUPPORT}, {"purchased_at": local("2026-06-01 10:00")}, {}, OutsideWindow,
     "vendors may grant a refund up to 90 days"),
    ("tech support to tech support", A.TECHSUPPORT, C, {"type": T.TECH_SUPPORT}, {}, {},
     Conflict, "already a tech-support"),
    ("conversion after the window", A.REFUND, C, {"type": T.TECH_SUPPORT},
     {"purchased_at": local("2026-07-01 10:00")}, {}, OutsideWindow, "up to 60 days"),
    ("conversion while a refund is open", A.REFUND, C,
     {"type": T.TECH_SUPPORT, "open_types": {T.REFUND: 9}}, {}, {}, Conflict,
     "open refund ticket, #9"),
    ("agree with nothing to agree to", A.AGREE, C, {}, {}, {}, Conflict, "no change"),
    ("dispute too late", A.DISPUTE, C,
     {"status": Status.CLOSED, "disputable_until": NOW - timedelta(seconds=1)}, {}, {}, Conflict,
     "2026-09-10 09:59 UTC"),
    ("awaiting confirmation", A.CLOSE, C, {"awaiting_confirmation": True}, {}, {}, Conflict,
     "confirm"),
]


@pytest.mark.parametrize(
    ("action", "role", "ticket_changes", "order_changes", "vendor_changes", "error", "part"),
    [row[1:] for row in ERROR_ROWS], ids=[row[0] for row in ERROR_ROWS],
)
def test_refusals_say_why(action: Action, role: Role, ticket_changes: dict[str, Any],
                          order_changes: dict[str, Any], vendor_changes: dict[str, Any],
                          error: type[Exception], part: str) -> None:
    with pytest.raises(error) as caught:
        actions.check_action(CLICKBANK, action, role, ticket(**ticket_changes),
                           order(**order_changes), vendor(**vendor_changes), NOW)
    assert type(caught.value) is error
    assert part in str(caught.value)


def test_dispute_on_the_last_allowed_second() -> None:
    facts = ticket(status=Status.CLOSED, disputable_until=NOW)
    actions.check_action(CLICKBANK, A.DISPUTE, C, facts, order(), vendor(), NOW)
    with pytest.raises(Conflict):
        actions.check_action(CLICKBANK, A.DISPUTE, C, facts, order(), vendor(),
                           NOW + timedelta(seconds=1))


def test_vendor_may_close_its_own_request_within_five_minutes() -> None:
    created = local("2026-09-10 12:00")
    facts = ticket(created_by=V, created_at=created, deadline_rule=R.QUICK)
    actions.check_action(CLICKBANK, A.CLOSE, V, facts, order(), vendor(), created + MINUTES_5)


# --- refund amounts ----------------------------------------------------------------------

D = Decimal

AMOUNT_ROWS = [
    # id, order changes, kind, value, amount
    ("full", {}, RefundKind.FULL, None, "47.00"),
    ("full, after an earlier refund", {"refunded_amount": D("10.00")}, RefundKind.FULL, None,
     "37.00"),
    ("full, recurring: the last bill only",
     {"recurring": True, "amount": D("29.97"), "latest_bill_at": local("2026-09-01 10:00"),
      "latest_bill_amount": D("9.99")}, RefundKind.FULL, None, "9.99"),
    ("amount", {}, RefundKind.AMOUNT, D("12.50"), "12.50"),
    ("amount, all that is left", {"refunded_amount": D("10.00")}, RefundKind.AMOUNT, D("37.00"),
     "37.00"),
    ("percent 1", {}, RefundKind.PERCENT, D("1"), "0.47"),
    ("percent 33 rounds to cents", {}, RefundKind.PERCENT, D("33"), "15.51"),
    ("percent 80", {}, RefundKind.PERCENT, D("80"), "37.60"),
    ("percent, capped by what is left", {"refunded_amount": D("40.00")}, RefundKind.PERCENT,
     D("50"), "7.00"),
    ("quantity 1 of 3", {"quantity": 3, "amount": D("30.00")}, RefundKind.QUANTITY, D("1"),
     "10.00"),
    ("quantity 2 of 3", {"quantity": 3, "amount": D("10.00")}, RefundKind.QUANTITY, D("2"),
     "6.67"),
]


@pytest.mark.parametrize(("order_changes", "kind", "value", "amount"),
                         [row[1:] for row in AMOUNT_ROWS], ids=[row[0] for row in AMOUNT_ROWS])
def test_refund_amount(order_changes: dict[str, Any], kind: RefundKind,
                       value: Decimal | None, amount: str) -> None:
    assert rules.refund_amount(order(**order_changes), kind, value, vendor()) == D(amount)


BAD_AMOUNT_ROWS = [
    # id, order changes, kind, value, message part
    ("percent 0", {}, RefundKind.PERCENT, D("0"), "from 1 to 80, not 0"),
    ("percent 81", {}, RefundKind.PERCENT, D("81"), "from 1 to 80, not 81"),
    ("percent 80.01", {}, RefundKind.PERCENT, D("80.01"), "from 1 to 80"),
    ("amount 0", {}, RefundKind.AMOUNT, D("0"), "more than 0.00"),
    ("negative amount", {}, RefundKind.AMOUNT, D("-5"), "more than 0.00"),
    ("amount above what is left", {"refunded_amount": D("10.00")}, RefundKind.AMOUNT,
     D("37.01"), "a partial refund of 37.01 is more than the 37.00 left"),
    ("missing amount", {}, RefundKind.AMOUNT, None, "by amount needs the amount"),
    ("not a number", {}, RefundKind.AMOUNT, D("NaN"), "is not a valid amount"),
    ("amount far beyond cents' reach", {}, RefundKind.AMOUNT, D("1e27"),
     "a partial refund of 1E+27 is more than the 47.00 left"),
    ("amount with a huge exponent", {}, RefundKind.AMOUNT, D("1e999999"),
     "a partial refund of 1E+999999 is more"),
    ("percent with a huge exponent", {}, RefundKind.PERCENT, D("1e999999"), "from 1 to 80"),
    ("quantity with a huge exponent", {"quantity": 3}, RefundKind.QUANTITY, D("1e999999"),
     "from 1 to 2"),
    ("quantity 0", {"quantity": 3}, RefundKind.QUANTITY, D("0"), "from 1 to 2"),
    ("the whole quantity", {"quantity": 3}, RefundKind.QUANTITY, D("3"), "from 1 to 2"),
    ("half an item", {"quantity": 3}, RefundKind.QUANTITY, D("1.5"), "whole number"),
    ("quantity on a single item", {}, RefundKind.QUANTITY, D("1"), "quantity of 1"),
]


@pytest.mark.parametrize(("order_changes", "kind", "value", "part"),
                         [row[1:] for row in BAD_AMOUNT_ROWS],
                         ids=[row[0] for row in BAD_AMOUNT_ROWS])
def test_refund_amount_refusals(order_changes: dict[str, Any], kind: RefundKind,
                                value: Decimal | None, part: str) -> None:
    with pytest.raises(UserError) as caught:
        rules.refund_amount(order(**order_changes), kind, value, vendor())
    assert part in caught.value.message


def test_a_refund_of_nothing_is_refused() -> None:
    with pytest.raises(UserError, match="comes to 0.00"):
        rules.refund_amount(order(amount=D("0.10")), RefundKind.PERCENT, D("1"), vendor())


@pytest.mark.parametrize("kind", list(RefundKind))
def test_nothing_left_is_a_conflict(kind: RefundKind) -> None:
    with pytest.raises(Conflict, match="nothing left"):
        rules.refund_amount(order(refunded_amount=D("47.00")), kind, D("1"), vendor())


def test_percent_range_comes_from_the_policy() -> None:
    narrow = dataclasses.replace(CLICKBANK, percent_min=10, percent_max=50)
    with pytest.raises(UserError, match="from 10 to 50"):
        rules.refund_amount(order(), RefundKind.PERCENT, D("60"), vendor(), policy=narrow)


@given(
    amount=st.decimals(min_value=D("0.01"), max_value=D("10000"), places=2),
    refunded_share=st.integers(min_value=0, max_value=99),
    quantity=st.integers(min_value=2, max_value=20),
    percent=st.integers(min_value=1, max_value=80),
    kind=st.sampled_from([RefundKind.FULL, RefundKind.PERCENT, RefundKind.QUANTITY]),
)
def test_refund_never_exceeds_what_is_left(amount: Decimal, refunded_share: int, quantity: int,
                                           percent: int, kind: RefundKind) -> None:
    refunded = (amount * refunded_share / 100).quantize(D("0.01"), rounding=ROUND_DOWN)
    assume(refunded < amount)
    facts = order(amount=amount, refunded_amount=refunded, quantity=quantity)
    value = {RefundKind.FULL: None, RefundKind.PERCENT: D(percent),
             RefundKind.QUANTITY: D(1)}[kind]
    try:
        result = rules.refund_amount(facts, kind, value, vendor())
    except UserError as error:  # a share of a few cents that rounds to nothing
        assert "comes to 0.00" in error.message
        return
    assert D("0") <= result <= amount - refunded
    assert result == result.quantize(D("0.01"))


# --- SPEC 11.5: disputes per vendor ------------------------------------------------------


def test_second_dispute_revokes_the_vendor() -> None:
    once = rules.after_dispute(vendor(), CLICKBANK)
    assert (once.dispute_count, once.may_respond) == (1, True)
    twice = rules.after_dispute(once, CLICKBANK)
    assert (twice.dispute_count, twice.may_respond) == (2, False)
    thrice = rules.after_dispute(twice, CLICKBANK)
    assert (thrice.dispute_count, thrice.may_respond) == (3, False)


def test_dispute_limit_is_configurable() -> None:
    policy = policy_for("clickbank", dispute_limit=3)
    facts = vendor()
    for _ in range(2):
        facts = rules.after_dispute(facts, policy)
    assert facts.may_respond
    assert not rules.after_dispute(facts, policy).may_respond


def test_staff_restore_resets_the_count() -> None:
    restored = rules.restore_vendor(vendor(may_respond=False, dispute_count=2))
    assert (restored.may_respond, restored.dispute_count) == (True, 0)
    assert rules.after_dispute(restored, CLICKBANK).may_respond
