"""The addons profile (seed 004) through the services, on SQLite and PostgreSQL: support
subscriptions and the support gate, refund windows and reasons, the Business Care refund, and
the vendor's refund approval in a reply."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from gateway.domain.errors import Conflict, OutsideWindow, UserError
from gateway.domain.facts import Action, Role, TicketType
from gateway.domain.support import SupportRequired
from gateway.services import deadlines, orders, tickets, vendors
from gateway.services.context import Actor
from gateway.services.runtime import Runtime
from gateway.services.views import order_view, ticket_view
from outbound.compose import Composer
from store.models import OutboxMail, Product, Ticket
from ticketgw.testing.runtime import make_runtime

STAFF = Actor(Role.STAFF, source="cli")
CUSTOMER = Actor(Role.CUSTOMER, "ann@example.org", source="web")
VENDOR = Actor(Role.VENDOR, "sales@acme.example", source="web")
NOW = datetime(2026, 11, 19, 9, 0, tzinfo=UTC)  # a Thursday
SHOP = "https://shop-a.example"


@pytest.fixture
def addons(migrated_url: str, tmp_path: Path) -> Iterator[Runtime]:
    rt = make_runtime(migrated_url, tmp_path, policy="addons")
    yield rt
    rt.close()


def product(**overrides: Any) -> dict[str, Any]:
    line: dict[str, Any] = {
        "receipt": "MODULE1", "vendor": "acme", "sku": "module-1", "title": "Shipping Module",
        "kind": "digital", "customer_email": "ann@example.org", "customer_name": "Ann",
        "amount": "47.00", "currency": "EUR", "purchased_at": "2026-11-10T10:00:00Z",
        "locale": "fr", "shop_url": SHOP,
    }
    line.update(overrides)
    return line


def care(**overrides: Any) -> dict[str, Any]:
    """A Business Care subscription for module-1 on shop A, valid until 2027-11-10."""
    values: dict[str, Any] = {"receipt": "CARE1", "sku": "care-module-1", "title": "Business Care",
                              "kind": "support", "covers_sku": "module-1", "amount": "20.00",
                              "valid_until": "2027-11-10"}
    return product(**{**values, **overrides})


def push(rt: Runtime, *lines: dict[str, Any], at: datetime = NOW) -> None:
    with rt.sessions.begin() as session:
        for line in lines:
            orders.upsert_order(session, rt.context(at), orders.parse_line(line))


def shop(rt: Runtime, *lines: dict[str, Any], at: datetime = NOW) -> None:
    with rt.sessions.begin() as session:
        vendors.add_vendor(session, rt.context(at), STAFF, "acme", "sales@acme.example",
                           timezone="UTC", locale="fr")
    push(rt, *lines, at=at)


def open_(rt: Runtime, kind: TicketType, actor: Actor = CUSTOMER, receipt: str = "MODULE1",
          at: datetime = NOW, **kw: Any) -> dict[str, Any]:
    with rt.sessions.begin() as session:
        return ticket_view(tickets.open_ticket(session, rt.context(at), receipt, kind, actor,
                                               **kw))


def act(rt: Runtime, number: int, action: Action, actor: Actor, at: datetime = NOW,
        **kw: Any) -> dict[str, Any]:
    with rt.sessions.begin() as session:
        return ticket_view(tickets.act(session, rt.context(at), number, action, actor, **kw))


def show(rt: Runtime, number: int) -> dict[str, Any]:
    with rt.sessions() as session:
        return ticket_view(tickets.find_ticket(session, number))


def counts(rt: Runtime) -> tuple[int, int]:
    with rt.sessions() as session:
        return (session.execute(select(func.count(Ticket.id))).scalar_one(),
                session.execute(select(func.count(OutboxMail.id))).scalar_one())


def mails(rt: Runtime) -> list[tuple[str, str]]:
    with rt.sessions() as session:
        rows = session.execute(select(OutboxMail.event, OutboxMail.party)
                               .order_by(OutboxMail.id)).all()
        return [(event, party) for event, party in rows]


# --- support subscriptions as order lines --------------------------------------------------


def test_a_support_line_is_imported_and_marks_its_product(addons: Runtime) -> None:
    shop(addons, product(), care())
    with addons.sessions() as session:
        view = order_view(orders_by(session, "CARE1"))
        assert session.execute(select(Product.business_care).where(
            Product.sku == "module-1")).scalar_one() is True
    assert (view["kind"], view["covers_sku"], view["shop_url"], view["valid_until"],
            view["support_active"]) == ("support", "module-1", SHOP, "2027-11-10T23:59:59Z",
                                        True)


def orders_by(session: Any, receipt: str) -> Any:
    return tickets.find_order(session, receipt)


@pytest.mark.parametrize(("line", "message"), [
    (care(covers_sku="nothing-1"), "covers_sku 'nothing-1' is not a product of this vendor"),
    (care(valid_until=None), "needs valid_until"),
    (care(covers_sku=None), "needs covers_sku"),
    (care(valid_until="2026-11-01"), "is not after purchased_at"),
    (product(covers_sku="module-1"), 'give "kind": "support"'),
    (product(valid_until="2027-01-01"), 'give "kind": "support"'),
    (product(shop_url="https://shop.example/" + "x" * 2000), "at most 2000"),
])
def test_a_wrong_support_line_is_refused_and_stores_nothing(addons: Runtime,
                                                            line: dict[str, Any],
                                                            message: str) -> None:
    shop(addons, product())
    read, problems = orders.read_line({k: v for k, v in line.items() if v is not None})
    with pytest.raises(UserError) as refused, addons.sessions.begin() as session:
        orders.upsert_order(session, addons.context(), read, problems=problems)
    assert message in refused.value.message
    with addons.sessions() as session:
        assert session.execute(select(func.count()).select_from(Product)).scalar_one() == 1


# --- the support gate ------------------------------------------------------------------------


def test_tech_support_without_any_subscription_is_refused(addons: Runtime) -> None:
    shop(addons, product())
    with pytest.raises(SupportRequired) as refused:
        open_(addons, TicketType.TECH_SUPPORT)
    assert "this order has none: buy Business Care for module-1 (https://shop-a.example)" in (
        refused.value.message)
    assert counts(addons) == (0, 0)


def test_tech_support_with_an_expired_subscription_is_refused(addons: Runtime) -> None:
    shop(addons, product(), care(valid_until="2026-11-18"))
    with pytest.raises(SupportRequired, match=r"\(CARE1\) expired on 2026-11-18T23:59:59Z: renew"):
        open_(addons, TicketType.TECH_SUPPORT)
    open_(addons, TicketType.TECH_SUPPORT, at=datetime(2026, 11, 18, 23, 59, 59, tzinfo=UTC))


def test_tech_support_for_another_shop_is_refused(addons: Runtime) -> None:
    shop(addons, product(shop_url="https://shop-b.example"), care())
    with pytest.raises(SupportRequired, match="yours covers https://shop-a.example"):
        open_(addons, TicketType.TECH_SUPPORT)
    assert counts(addons) == (0, 0)


def test_tech_support_with_a_valid_subscription_opens(addons: Runtime) -> None:
    shop(addons, product(shop_url="https://www.shop-a.example/"), care())
    assert open_(addons, TicketType.TECH_SUPPORT)["type"] == "tech_support"
    assert mails(addons) == [("opened", "customer"), ("opened", "vendor")]


def test_the_clickbank_profile_has_no_gate(runtime: Runtime) -> None:
    shop(runtime, product())
    assert open_(runtime, TicketType.TECH_SUPPORT)["type"] == "tech_support"


# --- refund windows and reasons ------------------------------------------------------------

BOUGHT_31_JAN = "2026-01-31T10:00:00Z"


@pytest.mark.parametrize(("actor", "last", "first_refused"), [
    (CUSTOMER, datetime(2026, 2, 28, 23, 59, 59, tzinfo=UTC),
     datetime(2026, 3, 1, 0, 0, tzinfo=UTC)),
    (VENDOR, datetime(2026, 7, 31, 23, 59, 59, tzinfo=UTC),
     datetime(2026, 8, 1, 0, 0, tzinfo=UTC)),
])
def test_one_month_and_six_months_from_31_january(addons: Runtime, actor: Actor,
                                                  last: datetime,
                                                  first_refused: datetime) -> None:
    shop(addons, product(purchased_at=BOUGHT_31_JAN), at=datetime(2026, 2, 1, tzinfo=UTC))
    with pytest.raises(OutsideWindow) as refused:
        open_(addons, TicketType.REFUND, actor, at=first_refused, reason="not_downloaded")
    assert ("until 2026-02-28" if actor is CUSTOMER else "until 2026-07-31") in (
        refused.value.message)
    assert open_(addons, TicketType.REFUND, actor, at=last,
                 reason="not_downloaded")["reason"] == "not_downloaded"


def test_a_customer_refund_needs_a_listed_reason(addons: Runtime) -> None:
    shop(addons, product())
    with pytest.raises(UserError, match="needs a reason, one of: not_downloaded, malfunction"):
        open_(addons, TicketType.REFUND)
    with pytest.raises(UserError, match="unknown reason 'not_satisfied'"):
        open_(addons, TicketType.REFUND, reason="not_satisfied")
    assert counts(addons) == (0, 0)
    assert open_(addons, TicketType.REFUND, reason="not_downloaded")["type"] == "refund"


def test_a_malfunction_refund_needs_a_tech_support_ticket_first(addons: Runtime) -> None:
    shop(addons, product(), care())
    with pytest.raises(Conflict) as refused:
        open_(addons, TicketType.REFUND, reason="malfunction")
    assert refused.value.code == "support_first"
    assert counts(addons) == (0, 0)
    support = open_(addons, TicketType.TECH_SUPPORT, comment="The module crashes")
    act(addons, support["number"], Action.CLOSE, CUSTOMER)
    later = NOW + timedelta(hours=1)
    refund = open_(addons, TicketType.REFUND, reason="malfunction", at=later)
    assert (refund["number"], refund["reason"]) == (support["number"] + 1, "malfunction")


def test_turning_the_support_ticket_into_a_refund_is_for_the_malfunction(addons: Runtime
                                                                         ) -> None:
    shop(addons, product(), care())
    support = open_(addons, TicketType.TECH_SUPPORT)
    converted = act(addons, support["number"], Action.REFUND, CUSTOMER)
    assert (converted["type"], converted["reason"]) == ("refund", "malfunction")


# --- a product refund refunds and ends its Business Care subscription ----------------------


def test_the_product_refund_also_refunds_and_ends_business_care(addons: Runtime) -> None:
    shop(addons, product(), care(), care(receipt="CARE9", shop_url="https://shop-b.example"))
    refund = open_(addons, TicketType.REFUND, reason="not_downloaded")
    result = deadlines.run_due(addons.sessions, lambda: addons.context(NOW + timedelta(days=2)),
                               addons.refunds)
    assert result.processed == 1
    done = show(addons, refund["number"])
    assert (done["status"], done["close_reason"], done["refund_amount"]) == (
        "closed", "processed", "47.00")
    assert done["support_refunds"] == [{"receipt": "CARE1", "amount": "20.00", "currency": "EUR"}]
    processed = [e for e in done["events"] if e["kind"] == "processed"][0]
    assert processed["note"] == "47.00 EUR + 20.00 EUR (CARE1)"
    with addons.sessions() as session:
        care_line = order_view(orders_by(session, "CARE1"))
        other = order_view(orders_by(session, "CARE9"))
        payloads = session.execute(select(OutboxMail.payload).where(
            OutboxMail.event == "processed")).scalars().all()
    assert (care_line["refunded_amount"], care_line["support_active"]) == ("20.00", False)
    assert (other["refunded_amount"], other["support_active"]) == ("0.00", True)
    assert len(payloads) == 2 and all(p["support_refunds"] == done["support_refunds"]
                                      for p in payloads)
    with pytest.raises(SupportRequired, match="was ended by a refund"):
        open_(addons, TicketType.TECH_SUPPORT, at=NOW + timedelta(days=3))


def test_clickbank_refunds_leave_support_lines_alone(runtime: Runtime) -> None:
    shop(runtime, product(), care())
    refund = open_(runtime, TicketType.REFUND)
    deadlines.run_due(runtime.sessions, lambda: runtime.context(NOW + timedelta(days=2)),
                      runtime.refunds)
    assert show(runtime, refund["number"])["support_refunds"] == []


# --- the vendor's approval in a reply (the seed's "$") ---------------------------------------


def test_the_vendors_refund_with_a_reason_approves_it_and_tells_staff(addons: Runtime) -> None:
    shop(addons, product(), care())
    number = open_(addons, TicketType.TECH_SUPPORT, comment="It crashes")["number"]
    approved = act(addons, number, Action.REFUND, VENDOR, comment="Sorry, refunding you.",
                   value="malfunction")
    assert (approved["type"], approved["reason"], approved["escalated"]) == (
        "refund", "malfunction", True)
    assert approved["process_at"] == "2026-11-19T09:05:00Z"  # the vendor's: 5 minutes
    assert [e["kind"] for e in approved["events"]][-3:] == [
        "type", "refund_approved", "escalated"]
    assert mails(addons)[2:] == [("changed", "customer"), ("changed", "vendor"),
                                 ("escalated", "staff")]
    with addons.sessions() as session:
        row = session.execute(select(OutboxMail).where(OutboxMail.party == "staff")).scalar_one()
        assert row.recipient == addons.settings.staff_email
    assert approved["messages"][-1]["text"] == "Sorry, refunding you."
    deadlines.run_due(addons.sessions, lambda: addons.context(NOW + timedelta(minutes=5)),
                      addons.refunds)
    assert show(addons, number)["support_refunds"][0]["receipt"] == "CARE1"


def test_the_vendors_reason_must_be_one_of_the_list(addons: Runtime) -> None:
    shop(addons, product(), care())
    number = open_(addons, TicketType.TECH_SUPPORT)["number"]
    with pytest.raises(UserError, match="unknown reason 'because'"):
        act(addons, number, Action.REFUND, VENDOR, value="because")
    assert show(addons, number)["type"] == "tech_support"


def test_clickbank_please_refund_on_a_tech_support_ticket(runtime: Runtime) -> None:
    shop(runtime, product())
    number = open_(runtime, TicketType.TECH_SUPPORT)["number"]
    converted = act(runtime, number, Action.REFUND, VENDOR)
    assert (converted["type"], converted["process_at"], converted["escalated"]) == (
        "refund", "2026-11-19T09:05:00Z", False)
    assert ("escalated", "staff") not in mails(runtime)


# --- the seed's communication tips -----------------------------------------------------------


def vendors_opened_mail(rt: Runtime) -> str:
    with rt.sessions() as session:
        row = session.execute(select(OutboxMail).where(
            OutboxMail.event == "opened", OutboxMail.party == "vendor")).scalar_one()
        raw = Composer(rt.settings, rt.tokens).compose(session, row, NOW).raw
    body = message_from_bytes(raw, policy=policy.default).get_body(("plain",))
    assert body is not None
    return " ".join(str(body.get_content()).split())


def test_the_vendors_opened_mail_has_the_communication_tips(addons: Runtime) -> None:
    shop(addons, product(), care())  # the vendor's locale is fr
    open_(addons, TicketType.TECH_SUPPORT)
    text = vendors_opened_mail(addons)
    assert "il se fait entre professionnels, il doit donc rester professionnel et courtois" in (
        text)
    assert "un partage d'écran au lieu d'un accès FTP" in text


def test_clickbank_opened_mails_have_no_tips(runtime: Runtime) -> None:
    shop(runtime, product())
    open_(runtime, TicketType.TECH_SUPPORT)
    assert "FTP" not in vendors_opened_mail(runtime)
