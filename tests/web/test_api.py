"""The REST API on SQLite and PostgreSQL: keys and scoping, every call, its errors, nothing
changed by a refused request, the rate limit, the OpenAPI document, and `apikey create`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from starlette.routing import Mount, Route
from starlette.testclient import TestClient

from gateway.domain.clock import FrozenClock
from gateway.domain.facts import Action, Role, TicketType
from gateway.services import apikeys, orders, tickets, vendors
from gateway.services.context import Actor
from gateway.services.runtime import Runtime
from gateway.services.views import ticket_view
from store.models import ApiKey, Event, Message, Order, OutboxMail, Ticket
from web.api import PREFIX, RateLimit
from web.app import create_app

STAFF = Actor(Role.STAFF, source="cli")
CUSTOMER = Actor(Role.CUSTOMER, "ann@example.org", source="email")


def line(**overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "receipt": "ABCD1234", "vendor": "acme", "sku": "ebook-1", "title": "Guide",
        "kind": "digital", "recurring": False, "customer_email": "ann@example.org",
        "customer_name": "Ann", "quantity": 1, "amount": "47.00", "currency": "USD",
        "purchased_at": "2026-11-10T10:00:00Z", "locale": "en",
    }
    values.update(overrides)
    return values


def setup_shop(rt: Runtime) -> None:
    """acme (partial refunds on) with ABCD1234; globex with WXYZ9999."""
    ctx = rt.context()
    with rt.sessions.begin() as session:
        vendors.add_vendor(session, ctx, STAFF, "acme", "sales@acme.example",
                           timezone="Europe/Berlin", partial_refunds=True)
        vendors.add_vendor(session, ctx, STAFF, "globex", "shop@globex.example")
        orders.upsert_order(session, ctx, orders.parse_line(line()))
        orders.upsert_order(session, ctx, orders.parse_line(line(
            receipt="WXYZ9999", vendor="globex", sku="tool-1", title="Tool",
            customer_email="bob@example.org")))


def add_order(rt: Runtime, **overrides: Any) -> None:
    with rt.sessions.begin() as session:
        orders.upsert_order(session, rt.context(), orders.parse_line(line(**overrides)))


def make_key(rt: Runtime, vendor: str | None = None) -> str:
    with rt.sessions.begin() as session:
        key, _, _ = apikeys.create_key(session, rt.context(), vendor_nick=vendor,
                                       staff=vendor is None)
        return key


def open_(rt: Runtime, receipt: str = "ABCD1234", kind: TicketType = TicketType.REFUND,
          actor: Actor = CUSTOMER) -> int:
    with rt.sessions.begin() as session:
        return tickets.open_ticket(session, rt.context(), receipt, kind, actor).number


def show(rt: Runtime, number: int) -> dict[str, Any]:
    with rt.sessions() as session:
        return ticket_view(tickets.find_ticket(session, number))


def counts(rt: Runtime) -> dict[str, int]:
    """Rows of everything a request may write: a refused one must leave all of them alone."""
    with rt.sessions() as session:
        return {model.__tablename__: int(session.execute(
            select(func.count()).select_from(model)).scalar_one())
            for model in (Order, Ticket, Message, Event, OutboxMail, ApiKey)}


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def assert_error(response: Any, status: int, code: str | None = None) -> None:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"code", "message"} and error["message"]
    if code is not None:
        assert error["code"] == code


class FakeMonotonic:
    def __init__(self) -> None:
        self.at = 1000.0

    def __call__(self) -> float:
        return self.at


@pytest.fixture
def client(runtime: Runtime) -> Iterator[TestClient]:
    setup_shop(runtime)
    with TestClient(create_app(runtime), base_url="http://testserver" + PREFIX) as test_client:
        yield test_client


@pytest.fixture
def staff(runtime: Runtime, client: TestClient) -> dict[str, str]:
    return bearer(make_key(runtime))


@pytest.fixture
def acme(runtime: Runtime, client: TestClient) -> dict[str, str]:
    return bearer(make_key(runtime, "acme"))


# --- keys and scoping ------------------------------------------------------------------------

def test_missing_wrong_and_revoked_keys_answer_401(runtime: Runtime, client: TestClient) -> None:
    response = client.get("/tickets")
    assert_error(response, 401, "unauthorized")
    assert response.headers["www-authenticate"] == "Bearer"
    assert_error(client.get("/tickets", headers={"Authorization": "Basic YWxhZGRpbjpv"}), 401)
    assert_error(client.get("/tickets", headers=bearer("tgw_not-a-key")), 401, "invalid_key")
    assert_error(client.get("/tickets", headers=bearer("x" * 5000)), 401, "invalid_key")
    key = make_key(runtime, "acme")
    assert client.get("/tickets", headers=bearer(key)).status_code == 200
    with runtime.sessions.begin() as session:
        row = apikeys.revoke_key(session, runtime.context(), key[:12])
        assert row.key_hash != key and key not in (row.prefix, row.key_hash)  # only a hash
    assert_error(client.get("/tickets", headers=bearer(key)), 401, "revoked_key")


def test_vendor_key_sees_own_tickets_only_staff_sees_all(
        runtime: Runtime, client: TestClient, staff: dict[str, str],
        acme: dict[str, str]) -> None:
    mine, theirs = open_(runtime), open_(runtime, "WXYZ9999")
    assert client.get("/tickets", headers=staff).json()["total"] == 2
    listed = client.get("/tickets", headers=acme).json()
    assert [t["number"] for t in listed["items"]] == [mine]
    assert client.get(f"/tickets/{mine}", headers=acme).json() == show(runtime, mine)
    assert client.get(f"/tickets/{theirs}", headers=staff).status_code == 200
    before = counts(runtime), show(runtime, theirs)
    # another vendor's ticket and order do not exist for this key
    assert_error(client.get(f"/tickets/{theirs}", headers=acme), 404, "not_found")
    assert_error(client.post(f"/tickets/{theirs}/replies", headers=acme,
                             json={"text": "hello"}), 404)
    assert_error(client.post(f"/tickets/{theirs}/actions", headers=acme,
                             json={"action": "close"}), 404)
    assert_error(client.post("/tickets", headers=acme,
                             json={"receipt": "WXYZ9999", "type": "tech_support"}), 404)
    assert_error(client.get("/orders/WXYZ9999/refund-preview", headers=acme), 404)
    assert (counts(runtime), show(runtime, theirs)) == before


# --- POST /orders ----------------------------------------------------------------------------

def _order_rows(rt: Runtime, receipt: str) -> list[tuple[str, str]]:
    with rt.sessions() as session:
        rows = session.execute(select(OutboxMail).join(Order, OutboxMail.order_id == Order.id)
                               .where(Order.receipt == receipt).order_by(OutboxMail.id))
        return [(r.event, r.party) for r in rows.scalars()]


def test_post_order_creates_then_updates_and_notifies(
        runtime: Runtime, client: TestClient, staff: dict[str, str]) -> None:
    body = line(receipt="NEW00001", customer_email="cy@example.org")
    response = client.post("/orders", headers=staff, json=body)
    assert response.status_code == 201, response.text
    order = response.json()
    assert (order["receipt"], order["vendor"], order["amount"]) == ("NEW00001", "acme", "47.00")
    assert order["purchased_at"] == "2026-11-10T10:00:00Z"
    assert _order_rows(runtime, "NEW00001") == [("receipt", "customer"), ("sale", "vendor")]
    response = client.post("/orders", headers=staff, json={**body, "customer_name": "Cy"})
    assert (response.status_code, response.json()["customer_name"]) == (200, "Cy")
    assert len(_order_rows(runtime, "NEW00001")) == 2  # an update mails nothing
    quiet = client.post("/orders", headers=staff, json={**line(receipt="NEW00002"),
                                                         "notify": False})
    assert quiet.status_code == 201
    assert _order_rows(runtime, "NEW00002") == []


def test_post_order_errors_store_nothing(runtime: Runtime, client: TestClient,
                                         staff: dict[str, str], acme: dict[str, str]) -> None:
    before = counts(runtime)
    good = line(receipt="NEW00003")
    assert_error(client.post("/orders", headers=acme,
                             json=line(receipt="NEW00004", vendor="globex", sku="tool-1",
                                       title="Tool")), 403, "forbidden")
    assert_error(client.post("/orders", headers=staff, content=b"{not json"), 400,
                 "malformed_json")
    assert_error(client.post("/orders", headers=staff, json=[good]), 400, "not_an_object")
    assert_error(client.post("/orders", headers=staff, json={**good, "amount": "4x"}), 422,
                 "invalid_field")
    for absurd in ("1e27", "1e999999"):  # more than an order can be worth: a field error
        assert_error(client.post("/orders", headers=staff, json={**good, "amount": absurd}),
                     422, "invalid_field")
    assert_error(client.post("/orders", headers=staff, json={**good, "notify": "yes"}), 422)
    assert_error(client.post("/orders", headers=staff, json={**good, "colour": "red"}), 422)
    missing = {k: v for k, v in good.items() if k != "customer_email"}
    assert_error(client.post("/orders", headers=staff, json=missing), 422, "missing_field")
    assert_error(client.post("/orders", headers=staff, json={**good, "vendor": "nobody"}), 422,
                 "unknown_vendor")
    # a receipt of acme's pushed again as globex's: the order's state forbids it
    assert_error(client.post("/orders", headers=staff, json=line(
        vendor="globex", sku="tool-1", title="Tool")), 409)
    assert counts(runtime) == before
    assert client.post("/orders", headers=acme, json=good).status_code == 201


# --- tickets ---------------------------------------------------------------------------------

def test_open_ticket_as_vendor_and_as_staff(runtime: Runtime, client: TestClient,
                                            staff: dict[str, str], acme: dict[str, str]) -> None:
    response = client.post("/tickets", headers=acme, json={
        "receipt": "abcd1234", "type": "refund", "reason": "duplicate", "comment": "Sorry"})
    assert response.status_code == 201, response.text
    ticket = response.json()
    assert ticket == show(runtime, ticket["number"])
    assert (ticket["created_by"], ticket["reason"], ticket["refund_kind"]) == (
        "vendor", "duplicate", "full")
    assert ticket["process_at"] == "2026-11-19T09:05:00Z"  # vendor-created: 5 minutes
    assert ticket["messages"][0]["source"] == "api"
    assert ticket["messages"][0]["author_email"] == "sales@acme.example"
    by_staff = client.post("/tickets", headers=staff,
                           json={"receipt": "WXYZ9999", "type": "tech_support"})
    assert by_staff.status_code == 201
    assert (by_staff.json()["created_by"], by_staff.json()["problem"]) == ("staff", "other")


def test_open_ticket_errors_store_nothing(runtime: Runtime, client: TestClient,
                                          acme: dict[str, str]) -> None:
    open_(runtime)
    before = counts(runtime)
    refund = {"receipt": "ABCD1234", "type": "refund"}
    assert_error(client.post("/tickets", headers=acme, content=b"[1, 2"), 400)
    assert_error(client.post("/tickets", headers=acme, json={"receipt": "ABCD1234"}), 422,
                 "missing_field")
    assert_error(client.post("/tickets", headers=acme, json={**refund, "type": "rant"}), 422)
    assert_error(client.post("/tickets", headers=acme, json={**refund, "reason": "moon"}), 422,
                 "invalid_reason")
    assert_error(client.post("/tickets", headers=acme, json={**refund, "receipt": 7}), 422)
    assert_error(client.post("/tickets", headers=acme, json={
        "receipt": "ABCD1234", "type": "tech_support", "refund_kind": "amount"}), 422)
    assert_error(client.post("/tickets", headers=acme, json={"receipt": "NOPE0000",
                                                             "type": "refund"}), 404)
    # the order already has an open refund; and it is no subscription to cancel
    assert_error(client.post("/tickets", headers=acme, json=refund), 409, "conflict")
    assert_error(client.post("/tickets", headers=acme,
                             json={"receipt": "ABCD1234", "type": "cancellation"}), 409)
    assert counts(runtime) == before


def test_open_refund_with_a_partial_kind_in_one_transaction(
        runtime: Runtime, client: TestClient, acme: dict[str, str]) -> None:
    add_order(runtime, receipt="PAIR0001", quantity=2, amount="40.00")
    before = counts(runtime)
    # the kind is refused after the ticket was opened: the opening is undone too
    assert_error(client.post("/tickets", headers=acme, json={
        "receipt": "PAIR0001", "type": "refund", "refund_kind": "percent",
        "refund_value": 95}), 422)
    assert_error(client.post("/tickets", headers=acme, json={
        "receipt": "PAIR0001", "type": "refund", "refund_kind": "amount"}), 422,
        "missing_field")
    assert counts(runtime) == before
    response = client.post("/tickets", headers=acme, json={
        "receipt": "PAIR0001", "type": "refund", "refund_kind": "quantity",
        "refund_value": "1"})
    assert response.status_code == 201, response.text
    ticket = response.json()
    assert (ticket["refund_kind"], ticket["refund_value"], ticket["refund_amount"]) == (
        "quantity", "1", "20.00")
    assert [e["kind"] for e in ticket["events"]] == ["opened", "refund_kind"]
    amount = client.post("/tickets", headers=acme, json={
        "receipt": "ABCD1234", "type": "refund", "refund_kind": "amount", "refund_value": 12.5})
    assert (amount.status_code, amount.json()["refund_amount"]) == (201, "12.50")


def test_list_pagination_and_filters(runtime: Runtime, client: TestClient,
                                     staff: dict[str, str]) -> None:
    assert isinstance(runtime.clock, FrozenClock)
    for n in range(5):
        add_order(runtime, receipt=f"LIST000{n}")
        open_(runtime, f"LIST000{n}", TicketType.TECH_SUPPORT if n % 2 else TicketType.REFUND)
        runtime.clock.advance(hours=1)
    with runtime.sessions.begin() as session:
        tickets.act(session, runtime.context(), 1001, Action.CLOSE, STAFF)

    def numbers(**query: Any) -> list[int]:
        response = client.get("/tickets", headers=staff, params=query)
        assert response.status_code == 200, response.text
        return [t["number"] for t in response.json()["items"]]

    first = client.get("/tickets", headers=staff, params={"per_page": 2}).json()
    assert (first["page"], first["per_page"], first["total"]) == (1, 2, 5)
    assert [t["number"] for t in first["items"]] == [1001, 1002]
    assert "messages" not in first["items"][0] and "events" not in first["items"][0]
    assert numbers(per_page=2, page=3) == [1005]
    assert numbers(per_page=2, page=4) == []
    assert numbers() == [1001, 1002, 1003, 1004, 1005]  # 20 a page by default
    assert numbers(type="tech_support") == [1002, 1004]
    assert numbers(status="closed") == [1001]
    assert numbers(status="open", type="refund") == [1003, 1005]
    assert numbers(receipt="list0003") == [1004]
    # created 09:00, 10:00, ... 13:00 UTC; both ends inclusive
    assert numbers(created_from="2026-11-19T10:00:00Z", created_to="2026-11-19T12:00:00Z") == [
        1002, 1003, 1004]
    assert numbers(created_from="2026-11-19T12:00:00+01:00") == [1003, 1004, 1005]
    for bad in ({"per_page": 101}, {"per_page": 0}, {"page": 0}, {"page": "two"},
                {"type": "bogus"}, {"status": "pending"}, {"created_from": "yesterday"},
                {"vendor": "acme"}):
        assert_error(client.get("/tickets", headers=staff, params=bad), 422)


def test_reply_answers_the_new_message(runtime: Runtime, client: TestClient,
                                       acme: dict[str, str], staff: dict[str, str]) -> None:
    number = open_(runtime)
    response = client.post(f"/tickets/{number}/replies", headers=acme,
                           json={"text": "  We can help.  "})
    assert response.status_code == 201, response.text
    message = response.json()
    assert message == show(runtime, number)["messages"][-1]
    assert (message["author_role"], message["author_email"], message["text"],
            message["source"], message["message_id"], message["attachments"]) == (
        "vendor", "sales@acme.example", "We can help.", "api", None, [])
    assert client.post(f"/tickets/{number}/replies", headers=staff,
                       json={"text": "Staff here"}).json()["author_role"] == "staff"
    before = counts(runtime), show(runtime, number)
    assert_error(client.post(f"/tickets/{number}/replies", headers=acme, json={"text": " "}),
                 422, "missing_field")
    assert_error(client.post(f"/tickets/{number}/replies", headers=acme, json={"txt": "x"}),
                 422)
    assert_error(client.post(f"/tickets/{number}/replies", headers=acme, content=b"text"), 400)
    assert_error(client.post("/tickets/9999/replies", headers=acme, json={"text": "x"}), 404)
    assert (counts(runtime), show(runtime, number)) == before
    client.post(f"/tickets/{number}/actions", headers=acme, json={"action": "close"})
    before = counts(runtime), show(runtime, number)
    assert_error(client.post(f"/tickets/{number}/replies", headers=acme, json={"text": "x"}),
                 409, "ticket_closed")
    assert (counts(runtime), show(runtime, number)) == before


def test_actions_and_refusals_that_change_nothing(
        runtime: Runtime, client: TestClient, acme: dict[str, str],
        staff: dict[str, str]) -> None:
    number = open_(runtime)

    def act(key: dict[str, str], **body: Any) -> Any:
        return client.post(f"/tickets/{number}/actions", headers=key, json=body)

    changed = act(acme, action="partial", amount="10.00", comment="Half is fair")
    assert changed.status_code == 200, changed.text
    assert (changed.json()["refund_kind"], changed.json()["refund_amount"]) == ("amount",
                                                                                 "10.00")
    assert changed.json() == show(runtime, number)
    assert act(acme, action="percent", percent=50).json()["refund_amount"] == "23.50"
    assert act(acme, action="full").json()["refund_amount"] == "47.00"
    escalated = act(acme, action="escalate", comment="Customer insists")
    assert escalated.json()["escalated"] is True
    before = counts(runtime), show(runtime, number)
    assert_error(act(acme, action="partial"), 422, "missing_field")
    assert_error(act(acme, action="partial", amount="ten"), 422)
    assert_error(act(acme, action="partial", amount=True), 422)
    assert_error(act(acme, action="partial", amount="500.00"), 422)
    for absurd in ("1e27", "1e999999", "-1e999999"):  # too large to round to cents
        assert_error(act(acme, action="partial", amount=absurd), 422)
        assert_error(act(acme, action="percent", percent=absurd), 422)
    assert_error(act(acme, action="full", amount="5"), 422)
    assert_error(act(acme, action="dance"), 422)
    assert_error(act(acme, action="agree"), 422)
    assert_error(act(acme, action="escalate"), 422, "missing_field")
    assert_error(act(staff, action="reopen"), 409)  # an open ticket cannot be reopened
    assert_error(act(acme, action="returned"), 409)  # no goods are awaited
    assert (counts(runtime), show(runtime, number)) == before
    closed = act(acme, action="close", comment="Solved by mail")
    assert (closed.status_code, closed.json()["status"]) == (200, "closed")
    before = counts(runtime), show(runtime, number)
    assert_error(act(acme, action="close"), 409, "conflict")
    assert_error(act(acme, action="reopen", comment="please"), 403, "forbidden")
    assert (counts(runtime), show(runtime, number)) == before
    reopened = act(staff, action="reopen", comment="Customer called")
    assert (reopened.status_code, reopened.json()["status"]) == (200, "open")
    converted = act(staff, action="techsupport")
    assert converted.json()["type"] == "tech_support"
    assert act(staff, action="refund").json()["type"] == "refund"


def test_refund_preview_for_every_kind(runtime: Runtime, client: TestClient,
                                       acme: dict[str, str]) -> None:
    add_order(runtime, receipt="PAIR0001", quantity=2, amount="40.00", currency="EUR")

    def preview(**query: Any) -> Any:
        return client.get("/orders/PAIR0001/refund-preview", headers=acme, params=query)

    assert preview(kind="full").json() == {"amount": "40.00", "currency": "EUR"}
    assert preview().json() == {"amount": "40.00", "currency": "EUR"}
    assert preview(kind="amount", value="12.34").json()["amount"] == "12.34"
    assert preview(kind="percent", value="25").json()["amount"] == "10.00"
    assert preview(kind="quantity", value="1").json()["amount"] == "20.00"
    before = counts(runtime)
    assert_error(preview(kind="percent", value="90"), 422)
    assert_error(preview(kind="quantity", value="3"), 422)
    assert_error(preview(kind="amount"), 422, "missing_field")
    assert_error(preview(kind="amount", value="abc"), 422)
    assert_error(preview(kind="amount", value="1e999999"), 422)
    assert_error(preview(kind="percent", value="1e27"), 422)
    assert_error(preview(kind="half"), 422)
    assert_error(preview(kind="full", extra="1"), 422)
    assert_error(client.get("/orders/NOPE0000/refund-preview", headers=acme), 404)
    assert counts(runtime) == before


# --- rate limit, unknown paths, OpenAPI ------------------------------------------------------

def test_rate_limit_per_key(runtime: Runtime) -> None:
    setup_shop(runtime)
    clock = FakeMonotonic()
    app = create_app(runtime, api_rate=RateLimit(3, 60.0, now=clock))
    one, other = bearer(make_key(runtime, "acme")), bearer(make_key(runtime))
    with TestClient(app, base_url="http://testserver" + PREFIX) as client:
        assert [client.get("/tickets", headers=one).status_code for _ in range(3)] == [200] * 3
        limited = client.get("/tickets", headers=one)
        assert_error(limited, 429, "rate_limited")
        assert limited.headers["retry-after"] == "20"
        assert client.get("/tickets", headers=other).status_code == 200  # its own bucket
        clock.at += 20
        assert client.get("/tickets", headers=one).status_code == 200
        assert_error(client.get("/tickets", headers=one), 429)


def test_unknown_paths_and_methods_answer_json(client: TestClient,
                                               staff: dict[str, str]) -> None:
    assert_error(client.get("/nothing", headers=staff), 404, "not_found")
    assert_error(client.get("/tickets/abc", headers=staff), 404)
    assert_error(client.get(f"/tickets/{10**20}", headers=staff), 404, "not_found")
    assert_error(client.delete("/tickets", headers=staff), 405)


def test_openapi_lists_every_route(client: TestClient) -> None:
    response = client.get("/openapi.json")  # no key needed to read the document
    assert response.status_code == 200
    document = response.json()
    assert document["openapi"].startswith("3.1")
    app_routes: set[tuple[str, str]] = set()
    mount = next(r for r in client.app.routes  # type: ignore[attr-defined]
                 if isinstance(r, Mount) and r.path == PREFIX)
    for route in mount.routes:
        assert isinstance(route, Route) and route.methods
        for method in route.methods - {"HEAD"}:
            app_routes.add((method.lower(), route.path.replace(":int", "")))
    documented = {(method, path) for path, ops in document["paths"].items() for method in ops}
    assert documented == app_routes
    assert len(app_routes) == 16  # 9, and a vendor's reply templates and signature
    # every $ref resolves
    refs = set(_refs(document))
    assert refs and all(ref.split("/")[-1] in document["components"]["schemas"] for ref in refs)


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


# --- `ticketgw apikey create` through the real command ---------------------------------------

def test_apikey_create_through_the_cli_and_use_the_key(
        migrated_url: str, tmp_path: Path, runtime: Runtime) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKETGW_")}
    env["TICKETGW_DATABASE_URL"] = migrated_url
    env["TICKETGW_SECRET_KEY"] = runtime.settings.secret_key  # one key a deployment

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "ticketgw.cli", *args], cwd=tmp_path,
                              env=env, capture_output=True, text=True, timeout=120)

    assert cli("init").returncode == 0
    assert cli("vendor", "add", "acme", "--email", "sales@acme.example").returncode == 0
    made = cli("apikey", "create", "--vendor", "acme", "--json")
    assert made.returncode == 0, made.stderr
    printed = json.loads(made.stdout)
    assert set(printed) == {"key", "prefix", "vendor", "staff"}
    assert (printed["vendor"], printed["staff"]) == ("acme", False)
    assert printed["key"].startswith("tgw_") and printed["key"].startswith(printed["prefix"])
    staff_made = cli("apikey", "create", "--staff", "--json")
    assert json.loads(staff_made.stdout)["vendor"] is None
    human = cli("apikey", "create", "--staff")
    assert human.returncode == 0 and "tgw_" in human.stdout
    unknown = cli("apikey", "create", "--vendor", "nobody", "--json")
    assert unknown.returncode == 1
    assert json.loads(unknown.stderr)["error"]["code"] == "not_found"
    assert "nobody" in json.loads(unknown.stderr)["error"]["message"]
    assert cli("apikey", "create", "--json").returncode != 0  # one of --vendor, --staff
    with runtime.sessions() as session:  # only hashes are stored
        stored = session.execute(select(ApiKey.key_hash)).scalars().all()
    assert len(stored) == 3 and printed["key"] not in stored
    add_order(runtime)
    with TestClient(create_app(runtime), base_url="http://testserver" + PREFIX) as client:
        response = client.post("/tickets", headers=bearer(printed["key"]),
                               json={"receipt": "ABCD1234", "type": "tech_support"})
        assert response.status_code == 201, response.text
        assert response.json()["created_by"] == "vendor"
