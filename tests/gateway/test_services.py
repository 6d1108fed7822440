"""Ticket services end to end on SQLite and PostgreSQL: open, act, deadlines, bad input."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from gateway.domain.errors import Conflict, Forbidden, NotFound, OutsideWindow, UserError
from gateway.domain.facts import Action, Role, TicketType
from gateway.services import deadlines, orders, tickets, vendors
from gateway.services.context import Actor
from gateway.services.runtime import Runtime
from gateway.services.views import status_view, ticket_view
from store.models import Event, Order, OutboxMail, Ticket
from ticketgw.testing.runtime import make_runtime

STAFF = Actor(Role.STAFF, source="cli")
CUSTOMER = Actor(Role.CUSTOMER, "ann@example.org", source="email")
VENDOR = Actor(Role.VENDOR, "sales@acme.example", source="email")
BERLIN_THU_10 = datetime(2026, 11, 19, 9, 0, tzinfo=UTC)  # Thu 10:00 in Berlin


def order_line(**overrides: Any) -> dict[str, Any]:
    line: dict[str, Any] = {
        "receipt": "ABCD1234", "vendor": "acme", "sku": "ebook-1", "title": "Guide",
        "kind": "digital", "recurring": False, "customer_email": "ann@example.org",
        "customer_name": "Ann", "quantity": 1, "amount": "47.00", "currency": "USD",
        "purchased_at": "2026-11-10T10:00:00Z", "locale": "fr",
    }
    line.update(overrides)
    return line


def setup_shop(rt: Runtime, *, partial: bool = False, **line: Any) -> None:
    ctx = rt.context()
    with rt.sessions.begin() as session:
        vendors.add_vendor(session, ctx, STAFF, "acme", "sales@acme.example",
                           timezone="Europe/Berlin", locale="de", partial_refunds=partial)
        orders.upsert_order(session, ctx, orders.parse_line(order_line(**line)))


def open_(rt: Runtime, at: datetime, kind: TicketType = TicketType.REFUND,
          actor: Actor = CUSTOMER, receipt: str = "ABCD1234", **kw: Any) -> dict[str, Any]:
    with rt.sessions.begin() as session:
        ticket = tickets.open_ticket(session, rt.context(at), receipt, kind, actor, **kw)
        return ticket_view(ticket)


def act(rt: Runtime, number: int, action: Action, actor: Actor, at: datetime,
        **kw: Any) -> dict[str, Any]:
    with rt.sessions.begin() as session:
        return ticket_view(tickets.act(session, rt.context(at), number, action, actor, **kw))


def show(rt: Runtime, number: int) -> dict[str, Any]:
    with rt.sessions() as session:
        return ticket_view(tickets.find_ticket(session, number))


def run(rt: Runtime, at: datetime) -> deadlines.SweepResult:
    return deadlines.run_due(rt.sessions, lambda: rt.context(at), rt.refunds)


def outbox(rt: Runtime) -> list[tuple[str, str, str]]:
    with rt.sessions() as session:
        rows = session.execute(select(OutboxMail).order_by(OutboxMail.id)).scalars().all()
        return [(r.event, r.party, r.recipient) for r in rows]


def test_refund_opened_by_customer_runs_after_24_business_hours(runtime: Runtime) -> None:
    setup_shop(runtime)
    ticket = open_(runtime, BERLIN_THU_10, reason="not_satisfied", comment="Not for me")
    assert ticket["number"] == 1001
    assert ticket["process_at"] == "2026-11-20T09:00:00Z"  # Fri 10:00 Berlin
    assert outbox(runtime) == [("opened", "customer", "ann@example.org"),
                               ("opened", "vendor", "sales@acme.example")]
    # one second early: nothing happens
    assert run(runtime, datetime(2026, 11, 20, 8, 59, 59, tzinfo=UTC)).total == 0
    assert show(runtime, 1001)["status"] == "open"
    result = run(runtime, datetime(2026, 11, 20, 9, 0, tzinfo=UTC))
    assert result.processed == 1
    done = show(runtime, 1001)
    assert (done["status"], done["close_reason"]) == ("closed", "processed")
    assert done["order_refunded_amount"] == "47.00"
    assert outbox(runtime)[-2:] == [("processed", "customer", "ann@example.org"),
                                    ("processed", "vendor", "sales@acme.example")]
    # running again (or with a clock that went backwards) executes nothing twice
    assert run(runtime, datetime(2026, 11, 21, tzinfo=UTC)).total == 0
    assert run(runtime, datetime(2026, 11, 19, tzinfo=UTC)).total == 0
    with runtime.sessions() as session:
        kinds = [e.kind for e in session.execute(select(Event).order_by(Event.id)).scalars()]
    assert kinds.count("processed") == 1


def test_vendor_opened_refund_runs_in_five_minutes_and_vendor_may_close_first(
        runtime: Runtime) -> None:
    setup_shop(runtime)
    ticket = open_(runtime, BERLIN_THU_10, actor=VENDOR)
    assert ticket["process_at"] == "2026-11-19T09:05:00Z"
    act(runtime, 1001, Action.CLOSE, VENDOR, BERLIN_THU_10 + timedelta(minutes=4))
    assert run(runtime, BERLIN_THU_10 + timedelta(minutes=5)).total == 0
    assert show(runtime, 1001)["close_reason"] == "by_vendor"


def test_customer_window_day_60_allowed_day_61_refused(runtime: Runtime) -> None:
    setup_shop(runtime, purchased_at="2026-09-20T10:00:00Z")  # Berlin 12:00
    day_61 = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
    with pytest.raises(OutsideWindow):
        open_(runtime, day_61)
    assert show_count(runtime) == 0
    day_60 = datetime(2026, 11, 19, 22, 59, tzinfo=UTC)  # 23:59 Berlin, still day 60
    assert open_(runtime, day_60)["status"] == "open"
    # the vendor may still refund on day 61 (90-day window)
    act(runtime, 1001, Action.CLOSE, STAFF, day_61)
    assert open_(runtime, day_61, actor=VENDOR)["created_by"] == "vendor"


def show_count(rt: Runtime) -> int:
    with rt.sessions() as session:
        return int(session.execute(select(func.count()).select_from(Ticket)).scalar_one())


def test_one_open_ticket_per_type_and_refund_converts_tech_support(runtime: Runtime) -> None:
    setup_shop(runtime)
    open_(runtime, BERLIN_THU_10, TicketType.TECH_SUPPORT, reason="cannot_download")
    with pytest.raises(Conflict):
        open_(runtime, BERLIN_THU_10, TicketType.TECH_SUPPORT)
    later = BERLIN_THU_10 + timedelta(hours=1)
    converted = open_(runtime, later, TicketType.REFUND, reason="technical_issue")
    assert converted["number"] == 1001 and converted["type"] == "refund"
    assert converted["process_at"] == "2026-11-20T10:00:00Z"  # conversion + 24 business hours
    assert show_count(runtime) == 1
    events = [(e["kind"], e["old"], e["new"]) for e in show(runtime, 1001)["events"]]
    assert ("type", "tech_support", "refund") in events
    assert outbox(runtime)[-1][0] == "changed"


def test_vendor_close_is_disputable_and_dispute_refunds_in_five_minutes(runtime: Runtime) -> None:
    setup_shop(runtime)
    open_(runtime, BERLIN_THU_10)
    closed = act(runtime, 1001, Action.CLOSE, VENDOR, BERLIN_THU_10 + timedelta(hours=1))
    assert closed["status"] == "closed" and closed["disputable_until"] is not None
    at = BERLIN_THU_10 + timedelta(hours=2)
    disputed = act(runtime, 1001, Action.DISPUTE, CUSTOMER, at)
    assert disputed["status"] == "open" and disputed["type"] == "refund"
    assert disputed["process_at"] == "2026-11-19T11:05:00Z"
    assert run(runtime, at + timedelta(minutes=5)).processed == 1


def test_two_disputes_revoke_the_vendor_who_then_cannot_close(runtime: Runtime) -> None:
    setup_shop(runtime, recurring=True, sku="club", title="Club",
               payments=[{"at": "2026-11-10T10:00:00Z", "amount": "47.00"}])
    at = BERLIN_THU_10
    open_(runtime, at)
    act(runtime, 1001, Action.TECHSUPPORT, VENDOR, at + timedelta(minutes=1))
    act(runtime, 1001, Action.DISPUTE, CUSTOMER, at + timedelta(minutes=2))
    open_(runtime, at + timedelta(minutes=3), TicketType.CANCELLATION)
    act(runtime, 1002, Action.CLOSE, VENDOR, at + timedelta(minutes=4))
    act(runtime, 1002, Action.DISPUTE, CUSTOMER, at + timedelta(minutes=5))
    with runtime.sessions() as session:
        vendor = vendors.find_vendor(session, "acme")
        assert (vendor.may_respond, vendor.dispute_count) == (False, 2)
    with pytest.raises(Forbidden):
        act(runtime, 1002, Action.CLOSE, VENDOR, at + timedelta(minutes=6))
    # staff restore resets the count
    with runtime.sessions.begin() as session:
        vendors.set_privilege(session, runtime.context(), STAFF, "acme", True)
    with runtime.sessions() as session:
        vendor = vendors.find_vendor(session, "acme")
        assert (vendor.may_respond, vendor.dispute_count) == (True, 0)


def test_revoked_vendor_requests_run_in_five_minutes(runtime: Runtime) -> None:
    setup_shop(runtime)
    open_(runtime, BERLIN_THU_10)
    revoke_at = BERLIN_THU_10 + timedelta(hours=1)
    with runtime.sessions.begin() as session:
        vendors.set_privilege(session, runtime.context(revoke_at), STAFF, "acme", False)
    assert show(runtime, 1001)["process_at"] == "2026-11-19T10:05:00Z"


def test_recurring_refund_takes_the_last_bill_and_cancels(runtime: Runtime) -> None:
    setup_shop(runtime, recurring=True, sku="club", title="Club", amount="30.00",
               purchased_at="2026-09-01T10:00:00Z",
               payments=[{"at": "2026-09-01T10:00:00Z", "amount": "30.00"},
                         {"at": "2026-10-01T10:00:00Z", "amount": "30.00"},
                         {"at": "2026-11-01T10:00:00Z", "amount": "19.99"}])
    ticket = open_(runtime, BERLIN_THU_10)
    assert ticket["refund_amount"] == "19.99"
    run(runtime, BERLIN_THU_10 + timedelta(days=2))
    with runtime.sessions() as session:
        order = session.execute(select(Order)).unique().scalar_one()
        assert order.refunded_amount == Decimal("19.99")
        assert order.subscription == "cancelled"
        assert [p.refunded_amount for p in order.payments] == [
            Decimal("0.00"), Decimal("0.00"), Decimal("19.99")]


def test_partial_refund_above_what_is_left_changes_nothing(runtime: Runtime) -> None:
    setup_shop(runtime, partial=True)
    open_(runtime, BERLIN_THU_10)
    before = show(runtime, 1001)
    with pytest.raises(UserError, match="47.00"):
        act(runtime, 1001, Action.PARTIAL, VENDOR, BERLIN_THU_10, value="50.00")
    with pytest.raises(UserError):
        act(runtime, 1001, Action.PERCENT, VENDOR, BERLIN_THU_10, value="81")
    assert show(runtime, 1001) == before
    changed = act(runtime, 1001, Action.PARTIAL, VENDOR, BERLIN_THU_10, value="12.50")
    assert (changed["refund_kind"], changed["refund_amount"]) == ("amount", "12.50")
    run(runtime, BERLIN_THU_10 + timedelta(days=2))
    assert show(runtime, 1001)["order_refunded_amount"] == "12.50"


def test_customer_may_not_use_vendor_actions(runtime: Runtime) -> None:
    setup_shop(runtime, partial=True)
    open_(runtime, BERLIN_THU_10)
    with pytest.raises(Forbidden):
        act(runtime, 1001, Action.PARTIAL, CUSTOMER, BERLIN_THU_10, value="1.00")
    with pytest.raises(Forbidden):
        act(runtime, 1001, Action.REOPEN, VENDOR, BERLIN_THU_10)


def test_tech_support_inactivity_warnings_then_auto_close(runtime: Runtime) -> None:
    setup_shop(runtime)
    open_(runtime, BERLIN_THU_10, TicketType.TECH_SUPPORT, comment="cannot download")
    # customer spoke last: warning at 48 business hours (Thu 10:00 -> Mon 10:00 Berlin)
    assert run(runtime, datetime(2026, 11, 23, 8, 59, tzinfo=UTC)).total == 0
    assert run(runtime, datetime(2026, 11, 23, 9, 0, tzinfo=UTC)).warnings == 1
    assert outbox(runtime)[-1][0] == "inactivity_warning"
    # a reply restarts the clock; vendor spoke last: 7 business days, then 14
    act(runtime, 1001, Action.REPLY, VENDOR, datetime(2026, 11, 23, 10, 0, tzinfo=UTC),
        comment="try again")
    assert run(runtime, datetime(2026, 12, 2, 9, 59, tzinfo=UTC)).total == 0
    assert run(runtime, datetime(2026, 12, 2, 10, 0, tzinfo=UTC)).warnings == 1
    assert run(runtime, datetime(2026, 12, 11, 10, 0, tzinfo=UTC)).closed == 1
    assert show(runtime, 1001)["close_reason"] == "inactive"


def test_zone_change_recomputes_open_deadlines(runtime: Runtime) -> None:
    setup_shop(runtime)
    # Friday 16:00 Berlin: +24 business hours is Monday 16:00 Berlin
    open_(runtime, datetime(2026, 11, 20, 15, 0, tzinfo=UTC))
    assert show(runtime, 1001)["process_at"] == "2026-11-23T15:00:00Z"
    with runtime.sessions.begin() as session:
        vendors.update_vendor(session, runtime.context(), STAFF, "acme",
                              timezone="America/New_York")
    # in New York the same instant is Friday 10:00; 14 hours left Friday, 10 on Monday
    assert show(runtime, 1001)["process_at"] == "2026-11-23T15:00:00Z"
    with runtime.sessions.begin() as session:
        vendors.update_vendor(session, runtime.context(), STAFF, "acme",
                              timezone="Pacific/Kiritimati")
    # at UTC+14 it was Saturday 05:00: the clock starts Monday 00:00 and ends Tuesday 00:00
    assert show(runtime, 1001)["process_at"] == "2026-11-23T10:00:00Z"


def test_customer_reply_to_closed_ticket_opens_follow_up(runtime: Runtime) -> None:
    setup_shop(runtime)
    open_(runtime, BERLIN_THU_10, TicketType.TECH_SUPPORT)
    act(runtime, 1001, Action.CLOSE, CUSTOMER, BERLIN_THU_10)
    follow = act(runtime, 1001, Action.REPLY, CUSTOMER, BERLIN_THU_10, comment="again")
    assert follow["number"] == 1002 and follow["type"] == "tech_support"
    assert follow["follows"] == 1001 and follow["messages"][0]["text"] == "again"
    with pytest.raises(Conflict):
        act(runtime, 1001, Action.REPLY, VENDOR, BERLIN_THU_10, comment="late")


def test_physical_goods_deadlines(runtime: Runtime) -> None:
    setup_shop(runtime, kind="physical", sku="book", title="Book", shipped=True,
               return_info=True)
    ticket = open_(runtime, BERLIN_THU_10)
    assert ticket["process_at"] is None  # waits for the return
    returned = act(runtime, 1001, Action.RETURNED, VENDOR, BERLIN_THU_10 + timedelta(days=3))
    assert returned["process_at"] == "2026-11-22T09:00:00Z"
    assert run(runtime, BERLIN_THU_10 + timedelta(days=3)).processed == 1


def test_import_errors_name_the_problem_and_store_nothing(runtime: Runtime) -> None:
    setup_shop(runtime)
    ctx = runtime.context()
    bad = [
        (order_line(receipt="ZZZZ0001", vendor="nobody"), "unknown vendor"),
        (order_line(receipt="ZZZZ0002", sku="new-sku", title=None), "unknown SKU"),
        (order_line(receipt="ZZZZ0003", amount="-1.00"), "zero or more"),
        (order_line(receipt="ZZZZ0004", kind="physical"), "different kind"),
        (order_line(receipt="ZZZZ0005", purchased_at="yesterday"), "ISO-8601"),
    ]
    for line, message in bad:
        with pytest.raises(UserError, match=message), runtime.sessions.begin() as session:
            orders.upsert_order(session, ctx, orders.parse_line(line))
    with runtime.sessions() as session:
        assert session.execute(select(func.count()).select_from(Order)).scalar_one() == 1


def test_unknown_receipt_and_ticket(runtime: Runtime) -> None:
    setup_shop(runtime)
    with pytest.raises(NotFound, match="NOPE0000"):
        open_(runtime, BERLIN_THU_10, receipt="NOPE0000")
    with pytest.raises(NotFound):
        show(runtime, 999)


def test_status_counts_and_next_deadline(runtime: Runtime) -> None:
    setup_shop(runtime)
    open_(runtime, BERLIN_THU_10)
    with runtime.sessions() as session:
        status = status_view(session)
    assert status == {"open_tickets": 1, "outbox_pending": 2, "outbox_failed": 0,
                      "next_deadline": "2026-11-20T09:00:00Z"}


def test_weekend_pause_off_runs_the_clock_all_week(migrated_url: str, tmp_path: Path) -> None:
    rt = make_runtime(migrated_url, tmp_path, weekend_pause="false")
    try:
        setup_shop(rt)
        friday_16_berlin = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)
        assert open_(rt, friday_16_berlin)["process_at"] == "2026-11-21T15:00:00Z"  # Saturday
    finally:
        rt.close()


def _activity(rt: Runtime, number: int) -> tuple[Any, ...]:
    with rt.sessions() as session:
        row = session.execute(
            select(Ticket.last_activity_at, Ticket.last_activity_side, Ticket.warnings_sent,
                   Ticket.due_at, Ticket.due_kind).where(Ticket.number == number)).one()
        return tuple(row)


def test_a_reply_restarts_the_clock_in_the_database_and_on_the_ticket(runtime: Runtime) -> None:
    setup_shop(runtime)
    open_(runtime, BERLIN_THU_10, TicketType.TECH_SUPPORT, comment="cannot download")
    assert run(runtime, datetime(2026, 11, 23, 9, 0, tzinfo=UTC)).warnings == 1
    replied = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
    with runtime.sessions.begin() as session:
        ticket = tickets.act(session, runtime.context(replied), 1001, Action.REPLY, VENDOR,
                             comment="try again")
        shown = (ticket.last_activity_at, ticket.last_activity_side, ticket.warnings_sent,
                 ticket.due_at, ticket.due_kind)
        assert not session.dirty  # written at once: nothing left for the flush
    # vendor spoke last: the first warning 7 business days on (Wed 2 Dec, 10:00 UTC)
    assert shown == (replied, "vendor", 0, datetime(2026, 12, 2, 10, 0, tzinfo=UTC),
                     "warning")
    assert _activity(runtime, 1001) == shown


def test_a_reply_after_other_changes_of_the_ticket_keeps_them_all(runtime: Runtime) -> None:
    setup_shop(runtime)
    open_(runtime, BERLIN_THU_10, TicketType.TECH_SUPPORT, comment="cannot download")
    replied = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
    with runtime.sessions.begin() as session:
        pending = tickets.find_ticket(session, 1001)
        pending.warnings_sent = 1  # a change waiting for the flush, on a column a reply sets
        pending.escalated = True
        tickets.act(session, runtime.context(replied), 1001, Action.REPLY, VENDOR,
                    comment="try again")
    assert _activity(runtime, 1001)[:3] == (replied, "vendor", 0)
    assert show(runtime, 1001)["escalated"] is True
