"""The addons profile and vendors' reply texts on the web, on SQLite and PostgreSQL: the
support gate through the API and the receipt page, reply templates and the signature through
the API, and the ticket page's reply with a template and a refund reason (the seed's "$")."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from starlette.testclient import TestClient

from gateway.domain.facts import Role, TicketType
from gateway.services import apikeys, orders, tickets, vendor_texts, vendors
from gateway.services.context import Actor
from gateway.services.runtime import Runtime
from gateway.services.views import ticket_view
from store.models import OutboxMail, ReplyTemplate, Ticket
from tests.web.test_workplace import csrf_of as workplace_csrf
from tests.web.test_workplace import sign_in
from ticketgw.testing.runtime import START, make_runtime
from web.api import PREFIX
from web.app import create_app

STAFF = Actor(Role.STAFF, source="cli")
SHOP = "https://ann.example"


def line(receipt: str, **overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "receipt": receipt, "vendor": "acme", "sku": "module-1", "title": "Shipping Module",
        "customer_email": "ann@example.org", "customer_name": "Ann", "amount": "47.00",
        "currency": "EUR", "purchased_at": (START - timedelta(days=3)).isoformat(),
        "locale": "en", "shop_url": SHOP}
    values.update(overrides)
    return values


def care(receipt: str, valid_until: str, shop_url: str = SHOP) -> dict[str, Any]:
    return line(receipt, sku="care-module-1", title="Business Care", kind="support",
                covers_sku="module-1", amount="20.00", valid_until=valid_until,
                shop_url=shop_url)


@pytest.fixture
def addons(migrated_url: str, tmp_path: Path) -> Iterator[Runtime]:
    rt = make_runtime(migrated_url, tmp_path, policy="addons")
    with rt.sessions.begin() as session:
        ctx = rt.context()
        vendors.add_vendor(session, ctx, STAFF, "acme", "sales@acme.example")
        vendors.add_vendor(session, ctx, STAFF, "globex", "shop@globex.example")
        for order in (line("EXPIRED1", shop_url="https://old.example"),
                      care("CAREOLD1", "2026-11-18", "https://old.example"),
                      line("OTHERSHOP1", shop_url="https://other.example"),
                      line("MODULE1"), care("CARE1", "2027-11-18")):
            orders.upsert_order(session, ctx, orders.parse_line(order))
    yield rt
    rt.close()


@pytest.fixture
def client(addons: Runtime) -> Iterator[TestClient]:
    with TestClient(create_app(addons), follow_redirects=False) as test_client:
        yield test_client


def key(rt: Runtime, vendor: str | None = "acme") -> dict[str, str]:
    with rt.sessions.begin() as session:
        made, _, _ = apikeys.create_key(session, rt.context(), vendor_nick=vendor,
                                        staff=vendor is None)
    return {"Authorization": f"Bearer {made}"}


def ticket_count(rt: Runtime) -> int:
    with rt.sessions() as session:
        return int(session.execute(select(func.count(Ticket.id))).scalar_one())


def show(rt: Runtime, number: int) -> dict[str, Any]:
    with rt.sessions() as session:
        return ticket_view(tickets.find_ticket(session, number))


# --- the support gate ----------------------------------------------------------------------


@pytest.mark.parametrize(("receipt", "says"), [
    ("EXPIRED1", "(CAREOLD1) expired on 2026-11-18T23:59:59Z: renew Business Care "
     "for module-1 (https://old.example)"),
    ("OTHERSHOP1", "yours covers https://ann.example, https://old.example: buy Business "
     "Care for module-1 (https://other.example)"),
])
def test_the_api_refuses_tech_support_without_valid_business_care(
        addons: Runtime, client: TestClient, receipt: str, says: str) -> None:
    response = client.post(f"{PREFIX}/tickets", headers=key(addons),
                           json={"receipt": receipt, "type": "tech_support"})
    assert response.status_code == 409, response.text
    error = response.json()["error"]
    assert error["code"] == "support_required" and says in error["message"]
    assert ticket_count(addons) == 0
    ok = client.post(f"{PREFIX}/tickets", headers=key(addons),
                     json={"receipt": "MODULE1", "type": "tech_support"})
    assert ok.status_code == 201 and ok.json()["type"] == "tech_support"


def receipt_path(rt: Runtime, receipt: str) -> str:
    with rt.sessions() as session:
        order_id = tickets.find_order(session, receipt).id
    token = rt.tokens.sign("receipt", order_id, Role.CUSTOMER,
                           rt.clock.now() + timedelta(days=90))
    return f"/r/{token}"


def csrf_of(page: str) -> str:
    found = re.search(r'name="csrf" value="([0-9a-f]+)"', page)
    assert found, "the page has no form"
    return found.group(1)


@pytest.mark.parametrize(("receipt", "says"), [
    ("EXPIRED1", "renew Business Care for module-1 (https://old.example)"),
    ("OTHERSHOP1", "buy Business Care for module-1 (https://other.example)"),
])
def test_the_receipt_page_says_what_to_renew(addons: Runtime, client: TestClient,
                                             receipt: str, says: str) -> None:
    path = receipt_path(addons, receipt)
    page = client.get(path)
    assert '<option value="not_downloaded">' in page.text  # the addons reasons
    assert '<option value="not_satisfied">' not in page.text
    response = client.post(path, data={"action": "open", "type": "tech_support",
                                       "reason": "not_working", "csrf": csrf_of(page.text)})
    assert response.status_code == 409
    assert says in html.unescape(response.text)
    assert ticket_count(addons) == 0


def test_the_customers_own_shop_is_never_offered_as_the_download(
        addons: Runtime, client: TestClient) -> None:
    """Under addons an order's shop_url is the customer's shop the module runs on."""
    path = receipt_path(addons, "MODULE1")
    page = client.get(path).text
    assert SHOP not in page
    assert f'href="{path}/download"' in page
    download = client.get(f"{path}/download").text
    assert SHOP not in download and "has not given a download address" in download


# --- templates and the signature through the API -------------------------------------------


def test_templates_and_signature_through_the_api(addons: Runtime, client: TestClient) -> None:
    acme = key(addons)
    base = f"{PREFIX}/vendors/acme"
    put = client.put(f"{base}/templates/Thanks", headers=acme,
                     json={"body": "Thanks {{ customer_name }} for {{ receipt }}."})
    assert put.status_code == 201 and put.json()["name"] == "thanks"
    assert client.put(f"{base}/templates/thanks", headers=acme,
                      json={"body": "Thank you {{ customer_name }}."}).status_code == 200
    bad = client.put(f"{base}/templates/bad", headers=acme,
                     json={"body": "Hi\n{{ ''.__class__ }}"})
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_template"
    assert "line 2: access to attribute '__class__'" in bad.json()["error"]["message"]
    unknown = client.put(f"{base}/templates/bad", headers=acme,
                         json={"body": "{{ order.amount }}"})
    assert "line 1: unknown field 'order'" in unknown.json()["error"]["message"]
    assert client.get(f"{base}/templates", headers=acme).json() == {
        "items": [{"name": "thanks", "updated_at": "2026-11-19T09:00:00Z"}]}
    assert client.get(f"{base}/templates/thanks", headers=acme).json()["body"] == (
        "Thank you {{ customer_name }}.")
    sign = client.put(f"{base}/signature", headers=acme, json={"text": "Acme Modules"})
    assert sign.json() == {"signature": "Acme Modules"}
    # another vendor's key sees nothing of acme's
    assert client.get(f"{base}/templates", headers=key(addons, "globex")).status_code == 404
    number = client.post(f"{PREFIX}/tickets", headers=acme,
                         json={"receipt": "MODULE1", "type": "tech_support"}).json()["number"]
    reply = client.post(f"{PREFIX}/tickets/{number}/replies", headers=acme,
                        json={"template": "thanks", "text": "Version 2.1 fixes it."})
    assert reply.status_code == 201
    assert reply.json()["text"] == (
        "Thank you Ann.\n\nVersion 2.1 fixes it.\n\n-- \nAcme Modules")
    gone = client.delete(f"{base}/templates/thanks", headers=acme)
    assert gone.status_code == 204
    missing = client.post(f"{PREFIX}/tickets/{number}/replies", headers=acme,
                          json={"template": "thanks"})
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "unknown_template"
    assert client.delete(f"{base}/signature", headers=acme).json() == {"signature": None}
    with addons.sessions() as session:
        assert session.execute(select(func.count()).select_from(ReplyTemplate)).scalar_one() == 0


def test_the_vendors_refund_reason_through_the_api(addons: Runtime, client: TestClient) -> None:
    acme = key(addons)
    number = client.post(f"{PREFIX}/tickets", headers=acme,
                         json={"receipt": "MODULE1", "type": "tech_support"}).json()["number"]
    wrong = client.post(f"{PREFIX}/tickets/{number}/actions", headers=acme,
                        json={"action": "close", "reason": "malfunction"})
    assert wrong.status_code == 422
    done = client.post(f"{PREFIX}/tickets/{number}/actions", headers=acme,
                       json={"action": "refund", "reason": "malfunction",
                             "comment": "Refunding you."})
    assert done.status_code == 200, done.text
    assert (done.json()["type"], done.json()["reason"], done.json()["escalated"]) == (
        "refund", "malfunction", True)


# --- the ticket page's reply form -----------------------------------------------------------


def test_the_vendor_replies_with_a_template_and_approves_the_refund_on_the_page(
        addons: Runtime, client: TestClient) -> None:
    with addons.sessions.begin() as session:
        number = tickets.open_ticket(session, addons.context(), "MODULE1",
                                     TicketType.TECH_SUPPORT,
                                     Actor(Role.CUSTOMER, source="web"), comment="Blank").number
        vendor_texts.save_template(session, addons.context(), STAFF, "acme", "sorry",
                                   "Sorry, {{ customer_name }}.")
    token = addons.tokens.sign("ticket", number, Role.VENDOR,
                               addons.clock.now() + timedelta(days=90))
    path = f"/t/{token}"
    page = client.get(path).text
    assert '<select name="template">' in page and '<option value="sorry">sorry</option>' in page
    assert '<select name="refund_reason">' in page
    assert '<option value="malfunction">' in page and '<option value="other">' in page
    response = client.post(path, data={"action": "reply", "template": "sorry", "comment": "",
                                       "refund_reason": "malfunction", "csrf": csrf_of(page)})
    assert response.status_code == 303, response.text
    view = show(addons, number)
    assert (view["type"], view["reason"], view["messages"][-1]["text"]) == (
        "refund", "malfunction", "Sorry, Ann.")
    with addons.sessions() as session:
        assert session.execute(select(OutboxMail.event).where(
            OutboxMail.party == "staff")).scalars().all() == ["escalated"]


def test_a_customer_page_has_no_templates(addons: Runtime, client: TestClient) -> None:
    with addons.sessions.begin() as session:
        number = tickets.open_ticket(session, addons.context(), "MODULE1",
                                     TicketType.TECH_SUPPORT,
                                     Actor(Role.CUSTOMER, source="web"), comment="Blank").number
        vendor_texts.save_template(session, addons.context(), STAFF, "acme", "sorry", "Sorry")
    token = addons.tokens.sign("ticket", number, Role.CUSTOMER,
                               addons.clock.now() + timedelta(days=90))
    page = client.get(f"/t/{token}").text
    assert 'name="template"' not in page and 'name="refund_reason"' not in page
    assert '<select name="reason">' in page  # beside Change to Refund: the customer's list


# --- the workplace ---------------------------------------------------------------------------


def test_the_workplace_gate_reasons_and_reply_form(addons: Runtime, client: TestClient) -> None:
    sign_in(client, addons, "sales@acme.example")
    order = client.get("/w/orders/EXPIRED1")
    assert '<option value="not_downloaded">' in order.text  # the addons reasons, and other
    assert '<option value="other">' in order.text
    refused = client.post("/w/orders/EXPIRED1", data={
        "type": "tech_support", "reason": "other", "csrf": workplace_csrf(order.text)})
    assert refused.status_code == 409
    assert "renew Business Care for module-1 (https://old.example)" in html.unescape(
        refused.text)
    assert ticket_count(addons) == 0
    module = client.get("/w/orders/MODULE1").text
    opened = client.post("/w/orders/MODULE1", data={
        "type": "tech_support", "reason": "other", "csrf": workplace_csrf(module)})
    assert opened.status_code == 303, opened.text
    path = opened.headers["location"].split("?")[0]
    page = client.get(path).text
    assert '<select name="refund_reason">' in page
    done = client.post(path, data={"action": "reply", "comment": "Refunding you.",
                                   "refund_reason": "malfunction", "csrf": workplace_csrf(page)})
    assert done.status_code == 303, done.text
    view = show(addons, int(path.rsplit("/", 1)[1]))
    assert (view["type"], view["reason"], view["escalated"]) == ("refund", "malfunction", True)
