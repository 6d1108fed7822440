"""Money actions that can no longer run are refused, never stuck or repeated (SQLite, PostgreSQL):
reopen, dispute, Please Refund and confirmation of a request with nothing left to execute; the
deadline processor checks again; an import never undoes what we recorded; failures by number."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select, update

from gateway.domain.errors import Conflict, UserError
from gateway.domain.facts import Action, TicketType
from gateway.services import orders, tickets
from gateway.services.execution import WebhookExecutor
from gateway.services.runtime import Runtime
from store.models import Order, OutboxMail, Ticket
from tests.gateway.test_services import (
    BERLIN_THU_10,
    CUSTOMER,
    STAFF,
    VENDOR,
    act,
    open_,
    order_line,
    run,
    setup_shop,
    show,
)
from tests.support.services import free_port

CLUB = {"recurring": True, "sku": "club", "title": "Club",
        "payments": [{"at": "2026-11-10T10:00:00Z", "amount": "47.00"}]}
DAYS_LATER = BERLIN_THU_10 + timedelta(days=2)


def mails(rt: Runtime) -> list[tuple[int | None, str, str]]:
    """(ticket number, event, party) of every outbound mail, in order."""
    with rt.sessions() as session:
        rows = session.execute(select(Ticket.number, OutboxMail.event, OutboxMail.party)
                               .join(Ticket, Ticket.id == OutboxMail.ticket_id)
                               .order_by(OutboxMail.id)).all()
        return [tuple(row) for row in rows]  # type: ignore[misc]


def subscription(rt: Runtime) -> str | None:
    with rt.sessions() as session:
        return session.execute(select(Order.subscription)).scalar_one()


def import_line(rt: Runtime, at: datetime | None = None, **overrides: Any) -> None:
    with rt.sessions.begin() as session:
        orders.upsert_order(session, rt.context(at), orders.parse_line(order_line(**overrides)))


def refund_then_cancellation(rt: Runtime) -> None:
    """#1001 refunds the last bill (which cancels the subscription) before #1002, the
    customer's cancellation opened a minute later, is due."""
    setup_shop(rt, **CLUB)
    open_(rt, BERLIN_THU_10)
    open_(rt, BERLIN_THU_10 + timedelta(minutes=1), TicketType.CANCELLATION)


# --- reopen, dispute, Please Refund ------------------------------------------------------------

def test_staff_cannot_reopen_a_refund_already_refunded_in_full(runtime: Runtime) -> None:
    setup_shop(runtime, partial=True)
    open_(runtime, BERLIN_THU_10)
    act(runtime, 1001, Action.PARTIAL, VENDOR, BERLIN_THU_10, value="12.50")
    run(runtime, DAYS_LATER)
    # money is left: staff may reopen, and refund the rest
    reopened = act(runtime, 1001, Action.REOPEN, STAFF, DAYS_LATER)
    assert reopened["status"] == "open" and reopened["process_at"] is not None
    act(runtime, 1001, Action.FULL, STAFF, DAYS_LATER)
    assert run(runtime, DAYS_LATER + timedelta(days=5)).processed == 1
    before = show(runtime, 1001)
    assert before["order_refunded_amount"] == "47.00"
    with pytest.raises(Conflict, match="refunded in full .* cannot be reopened"):
        act(runtime, 1001, Action.REOPEN, STAFF, DAYS_LATER + timedelta(days=5),
            comment="customer called")
    assert show(runtime, 1001) == before  # no comment, no deadline, still closed
    assert run(runtime, DAYS_LATER + timedelta(days=30)).total == 0


def test_staff_cannot_reopen_a_cancellation_of_an_ended_subscription(runtime: Runtime) -> None:
    setup_shop(runtime, **CLUB)
    open_(runtime, BERLIN_THU_10, TicketType.CANCELLATION)
    run(runtime, DAYS_LATER)
    assert subscription(runtime) == "cancelled"
    with pytest.raises(Conflict, match="already cancelled.* cannot be reopened"):
        act(runtime, 1001, Action.REOPEN, STAFF, DAYS_LATER)
    assert [m[1] for m in mails(runtime)].count("processed") == 2  # one to each party, once


def test_a_dispute_cannot_bring_back_a_cancellation_that_ended(runtime: Runtime) -> None:
    refund_then_cancellation(runtime)
    act(runtime, 1002, Action.CLOSE, VENDOR, BERLIN_THU_10 + timedelta(minutes=2))
    run(runtime, DAYS_LATER)  # the refund of #1001 cancels the subscription
    before = show(runtime, 1002)
    with pytest.raises(Conflict, match="already cancelled.* cannot be brought back"):
        act(runtime, 1002, Action.DISPUTE, CUSTOMER, DAYS_LATER)
    assert show(runtime, 1002) == before


def test_please_refund_on_a_cancellation_that_ended_is_refused(runtime: Runtime) -> None:
    refund_then_cancellation(runtime)
    act(runtime, 1001, Action.REFUND, VENDOR, BERLIN_THU_10 + timedelta(minutes=2))
    run(runtime, BERLIN_THU_10 + timedelta(minutes=7))  # #1001 only: Please Refund, 5 min
    with pytest.raises(Conflict, match="already cancelled.* cannot be processed"):
        act(runtime, 1002, Action.REFUND, VENDOR, BERLIN_THU_10 + timedelta(minutes=8))


# --- the deadline processor checks again --------------------------------------------------------

def test_a_cancellation_due_after_the_subscription_ended_is_escalated_not_processed_twice(
        runtime: Runtime) -> None:
    refund_then_cancellation(runtime)
    result = run(runtime, DAYS_LATER)
    assert (result.processed, result.failed) == (1, [])
    assert [(n, "already cancelled" in why) for n, why in result.skipped] == [(1002, True)]
    view = show(runtime, 1002)
    assert (view["status"], view["escalated"], view["process_at"]) == ("open", True, None)
    assert [e["kind"] for e in view["events"]] == ["opened", "not_processed", "escalated"]
    assert [m for m in mails(runtime) if m[0] == 1002 and m[1] != "opened"] == [
        (1002, "escalated", "customer"), (1002, "escalated", "vendor"),
        (1002, "escalated", "staff")]  # told, and never "Cancellation Processed"
    assert run(runtime, DAYS_LATER + timedelta(days=30)).total == 0


def test_a_refund_left_with_nothing_to_refund_is_not_failed_at_every_sweep(
        runtime: Runtime) -> None:
    setup_shop(runtime)
    open_(runtime, BERLIN_THU_10)
    # The state an earlier version left behind when staff reopened a refunded ticket: due,
    # with the order refunded in full. Written directly: no action can make it any more.
    with runtime.sessions.begin() as session:
        session.execute(update(Order).values(refunded_amount=Decimal("47.00")))
    result = run(runtime, DAYS_LATER)
    assert (result.processed, result.failed) == (0, [])
    assert [n for n, _ in result.skipped] == [1001]
    assert "refunded in full" in result.skipped[0][1]
    assert show(runtime, 1001)["escalated"] is True
    assert run(runtime, DAYS_LATER + timedelta(minutes=1)).total == 0


def test_failures_name_the_ticket_by_number(runtime: Runtime) -> None:
    runtime.executor = WebhookExecutor(f"http://127.0.0.1:{free_port()}/refunds", "secret",
                                       runtime.policy)  # nothing listens there
    setup_shop(runtime)
    open_(runtime, BERLIN_THU_10)
    result = run(runtime, DAYS_LATER)
    assert [n for n, _ in result.failed] == [1001]


# --- confirmation of an unverified request ----------------------------------------------------

def test_confirming_a_cancellation_after_the_subscription_ended_is_refused(
        runtime: Runtime) -> None:
    setup_shop(runtime, **CLUB)
    open_(runtime, BERLIN_THU_10, TicketType.CANCELLATION,
          actor=dataclasses.replace(CUSTOMER, verified=False), awaiting_confirmation=True)
    open_(runtime, BERLIN_THU_10 + timedelta(minutes=1))
    run(runtime, DAYS_LATER)  # the refund cancels the subscription
    sent = mails(runtime)
    with pytest.raises(Conflict, match="already cancelled.* cannot be confirmed"), \
            runtime.sessions.begin() as session:
        ticket = tickets.find_ticket(session, 1001, lock=True)
        tickets.confirm(session, runtime.context(DAYS_LATER), ticket, CUSTOMER)
    view = show(runtime, 1001)
    assert (view["awaiting_confirmation"], view["process_at"]) == (True, None)
    assert mails(runtime) == sent


# --- imports never undo what we recorded ------------------------------------------------------

def test_reimport_keeps_our_cancellation_and_refuses_later_bills(runtime: Runtime) -> None:
    setup_shop(runtime, **CLUB)
    open_(runtime, BERLIN_THU_10, TicketType.CANCELLATION)
    run(runtime, DAYS_LATER)  # cancelled at 2026-11-21T09:00:00Z
    next_day = DAYS_LATER + timedelta(days=1)
    import_line(runtime, next_day, **CLUB)  # the same line: "subscription" defaults to active
    import_line(runtime, next_day, **CLUB, subscription="active")
    assert subscription(runtime) == "cancelled"
    with pytest.raises(Conflict, match="already cancelled"):
        open_(runtime, next_day, TicketType.CANCELLATION)
    later = [*CLUB["payments"], {"at": "2026-11-21T12:00:00Z", "amount": "47.00"}]
    with pytest.raises(Conflict, match=r"2026-11-21T12:00:00Z comes after the subscription "
                                       r"was cancelled on 2026-11-21T09:00:00Z \(ticket #1001"):
        import_line(runtime, next_day, **{**CLUB, "payments": later})
    with runtime.sessions() as session:
        assert len(session.execute(select(Order)).unique().scalar_one().payments) == 1


def test_reimport_may_not_undo_a_refund(runtime: Runtime) -> None:
    setup_shop(runtime)
    open_(runtime, BERLIN_THU_10)
    run(runtime, DAYS_LATER)
    with pytest.raises(UserError) as refused:
        import_line(runtime, amount="40.00",
                    payments=[{"at": "2026-11-10T10:00:00Z", "amount": "40.00"}])
    assert refused.value.message == (
        "the payment of 2026-11-10T10:00:00Z (47.00) was refunded (47.00, ticket #1001) and "
        "must stay in the line unchanged; amount 40.00 is less than the 47.00 already "
        "refunded (ticket #1001)")
    with runtime.sessions() as session:
        assert session.execute(select(Order.amount)).scalar_one() == Decimal("47.00")


def test_an_import_line_reports_every_error_at_once(runtime: Runtime) -> None:
    setup_shop(runtime)
    line = order_line(receipt="NEXT0001", quantity="two", purchased_at="2026-11-20T10:00:00Z",
                      payments=[{"at": "2026-11-01T10:00:00Z", "amount": "50.00"}])
    with pytest.raises(UserError) as refused, runtime.sessions.begin() as session:
        found, problems = orders.read_line(line)
        orders.upsert_order(session, runtime.context(), found, problems=problems)
    assert refused.value.message.split("; ") == [
        "quantity 'two' is not a whole number",
        "purchased_at 2026-11-20T10:00:00Z is in the future (it is now 2026-11-19T09:00:00Z)",
        "the payment of 2026-11-01T10:00:00Z is before purchased_at 2026-11-20T10:00:00Z",
        "the payment of 2026-11-01T10:00:00Z (50.00) is more than the order's amount (47.00)",
    ]
