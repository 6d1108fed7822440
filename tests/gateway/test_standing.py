"""A vendor's standing by mail, on SQLite and PostgreSQL: a mail at each dispute and at
revocation, and a notice each time a revoked vendor's answer by mail is dropped."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select

from gateway.domain.facts import Action, Role, TicketType
from gateway.services import by_mail, orders, tickets, vendors
from gateway.services.by_mail import Refused
from gateway.services.context import NO_ORIGIN, Actor
from gateway.services.runtime import Runtime
from store.models import OutboxMail

STAFF = Actor(Role.STAFF, source="cli")
CUSTOMER = Actor(Role.CUSTOMER, "ann@example.org", source="email")
VENDOR = Actor(Role.VENDOR, "help@acme.example", source="email")


def setup_shop(rt: Runtime) -> None:
    ctx = rt.context()
    with rt.sessions.begin() as session:
        vendors.add_vendor(session, ctx, STAFF, "acme", "sales@acme.example",
                           cs_email="help@acme.example", locale="fr")
        for receipt in ("ABCD1234", "EFGH5678"):
            orders.upsert_order(session, ctx, orders.parse_line({
                "receipt": receipt, "vendor": "acme", "sku": "club", "title": "Club",
                "kind": "digital", "recurring": True, "customer_email": "ann@example.org",
                "customer_name": "Ann", "quantity": 1, "amount": "47.00", "currency": "USD",
                "purchased_at": "2026-11-10T10:00:00Z", "locale": "en",
                "payments": [{"at": "2026-11-10T10:00:00Z", "amount": "47.00"}]}))


def mails(rt: Runtime, *events: str) -> list[tuple[str, str, str, dict[str, Any] | None]]:
    with rt.sessions() as session:
        rows = session.execute(select(OutboxMail).where(OutboxMail.event.in_(events))
                               .order_by(OutboxMail.id)).scalars().all()
        return [(r.event, r.party, r.recipient, (r.payload or {}).get("account"))
                for r in rows]


def dispute(rt: Runtime, receipt: str, kind: TicketType, change: Action) -> int:
    with rt.sessions.begin() as session:
        number = tickets.open_ticket(session, rt.context(), receipt, kind, CUSTOMER).number
    for actor, action in ((VENDOR, change), (CUSTOMER, Action.DISPUTE)):
        with rt.sessions.begin() as session:
            tickets.act(session, rt.context(), number, action, actor)
    return number


def test_each_dispute_mails_the_vendor_its_count_and_revocation_mails_vendor_and_staff(
        runtime: Runtime) -> None:
    setup_shop(runtime)
    dispute(runtime, "ABCD1234", TicketType.REFUND, Action.TECHSUPPORT)
    assert mails(runtime, "disputed", "revoked") == [
        ("disputed", "vendor", "help@acme.example",
         {"vendor": "acme", "disputes": 1, "limit": 2, "revoked": False, "note": None})]
    dispute(runtime, "EFGH5678", TicketType.CANCELLATION, Action.CLOSE)
    revoked = {"vendor": "acme", "disputes": 2, "limit": 2, "revoked": True,
               "note": "2 disputes"}
    assert mails(runtime, "disputed", "revoked")[1:] == [
        ("revoked", "vendor", "help@acme.example", revoked),
        ("revoked", "staff", "staff@tickets.localhost", revoked),
        ("disputed", "vendor", "help@acme.example", {**revoked, "note": None})]


def test_staff_revoking_by_hand_mails_only_the_vendor(runtime: Runtime) -> None:
    setup_shop(runtime)
    with runtime.sessions.begin() as session:
        vendors.set_privilege(session, runtime.context(), STAFF, "acme", False)
    assert [(e, p) for e, p, _, _ in mails(runtime, "revoked")] == [("revoked", "vendor")]


def test_a_revoked_vendor_is_told_each_time_its_answer_is_dropped(runtime: Runtime) -> None:
    setup_shop(runtime)
    with runtime.sessions.begin() as session:
        number = tickets.open_ticket(session, runtime.context(), "ABCD1234", TicketType.REFUND,
                                     CUSTOMER).number
        vendors.set_privilege(session, runtime.context(), STAFF, "acme", False)
    for minute in (1, 2, 3):  # the same day, the same ticket
        ctx = runtime.context(runtime.clock.now() + timedelta(minutes=minute))
        with runtime.sessions.begin() as session:
            outcome = by_mail.reply(session, ctx, number, None, VENDOR, "We can help!",
                                    NO_ORIGIN)
        assert isinstance(outcome, Refused) and "revoked" in outcome.message
    with runtime.sessions() as session:
        notices = session.execute(select(OutboxMail.notice_kind, OutboxMail.recipient).where(
            OutboxMail.event == "notice")).all()
    assert [tuple(n) for n in notices] == [("reply_revoked", "help@acme.example")] * 3
