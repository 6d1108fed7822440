"""The web pages on SQLite and PostgreSQL: GET changes nothing, POST needs CSRF, exact buttons."""

from __future__ import annotations

import asyncio
import dataclasses
import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, func, select
from starlette.testclient import TestClient

from gateway.domain.facts import Action, Role, TicketType
from gateway.services import orders, tickets, vendors
from gateway.services.context import Actor
from gateway.services.runtime import Runtime
from gateway.services.views import ticket_view
from store.models import Event, Order, OutboxMail
from web.app import create_app
from web.server import start_web

STAFF = Actor(Role.STAFF, source="cli")
CUSTOMER = Actor(Role.CUSTOMER, "ann@example.org", source="email")
VENDOR = Actor(Role.VENDOR, "sales@acme.example", source="email")
VENDOR_SIX = ["Reply", "Close Ticket", "Change to Tech Support", "Please Refund",
              "Change Refund Type", "Escalate"]


def setup_shop(rt: Runtime, *, vendor_locale: str = "en", **line: Any) -> int:
    """A vendor and one order; both read English unless told (pages are in the party's
    language: tests/web/test_page_language.py)."""
    values: dict[str, Any] = {
        "receipt": "ABCD1234", "vendor": "acme", "sku": "ebook-1", "title": "Guide",
        "kind": "digital", "recurring": False, "customer_email": "ann@example.org",
        "customer_name": "Ann", "quantity": 1, "amount": "47.00", "currency": "USD",
        "purchased_at": "2026-11-10T10:00:00Z", "locale": "en",
    }
    values.update(line)
    ctx = rt.context()
    with rt.sessions.begin() as session:
        vendors.add_vendor(session, ctx, STAFF, "acme", "sales@acme.example",
                           timezone="Europe/Berlin", locale=vendor_locale)
        order, _ = orders.upsert_order(session, ctx, orders.parse_line(values))
        return order.id


def open_(rt: Runtime, kind: TicketType = TicketType.REFUND, actor: Actor = CUSTOMER,
          **kw: Any) -> int:
    with rt.sessions.begin() as session:
        return tickets.open_ticket(session, rt.context(), "ABCD1234", kind, actor, **kw).number


def act(rt: Runtime, number: int, action: Action, actor: Actor, **kw: Any) -> None:
    with rt.sessions.begin() as session:
        tickets.act(session, rt.context(), number, action, actor, **kw)


def show(rt: Runtime, number: int) -> dict[str, Any]:
    with rt.sessions() as session:
        return ticket_view(tickets.find_ticket(session, number))


def outbox_count(rt: Runtime) -> int:
    with rt.sessions() as session:
        return int(session.execute(select(func.count()).select_from(OutboxMail)).scalar_one())


def token(rt: Runtime, purpose: str, subject: int, party: Role = Role.CUSTOMER,
          expires: datetime | None = None) -> str:
    when = expires or rt.clock.now() + timedelta(days=90)
    return rt.tokens.sign(purpose, subject, party, when)


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([0-9a-f]+)"', html)
    assert found, "the page has no form"
    return found.group(1)


def buttons_of(html: str) -> list[str]:
    return re.findall(r"<button type=\"submit\"[^>]*>([^<]+)</button>", html)


def links_of(html: str) -> list[str]:
    return re.findall(r"<a href=\"[^\"]*\"[^>]*>([^<]+)</a>", html)


@pytest.fixture
def client(runtime: Runtime) -> Iterator[TestClient]:
    with TestClient(create_app(runtime), follow_redirects=False) as test_client:
        yield test_client


# --- health and metrics --------------------------------------------------------------------

def test_healthz_answers_ok_when_database_and_broker_answer(client: TestClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"database": "ok", "broker": "ok"}


def test_healthz_says_which_part_failed(runtime: Runtime) -> None:
    with TestClient(create_app(runtime, broker_check=lambda: False)) as test_client:
        response = test_client.get("/healthz")
    assert (response.status_code, response.json()) == (
        503, {"database": "ok", "broker": "unavailable"})

    def broken() -> bool:
        raise ConnectionError("broker down")

    broken_db = dataclasses.replace(
        runtime, engine=create_engine("sqlite:////nonexistent-dir/ticketgw/none.db"))
    with TestClient(create_app(broken_db, broker_check=broken)) as test_client:
        response = test_client.get("/healthz")
    assert (response.status_code, response.json()) == (
        503, {"database": "unavailable", "broker": "unavailable"})


def test_metrics_count_tickets_outbox_and_next_deadline(runtime: Runtime,
                                                        client: TestClient) -> None:
    setup_shop(runtime)
    open_(runtime)  # customer refund at Thu 10:00 Berlin: runs Fri 10:00, in 24 hours
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    lines = response.text.splitlines()
    assert 'ticketgw_open_tickets{type="refund"} 1.0' in lines
    assert 'ticketgw_open_tickets{type="tech_support"} 0.0' in lines
    assert 'ticketgw_outbox_mails{state="pending"} 2.0' in lines
    assert "ticketgw_deadlines_overdue 0.0" in lines
    assert "ticketgw_database_up 1.0" in lines
    assert "ticketgw_next_deadline_seconds 86400.0" in lines


# --- the ticket page --------------------------------------------------------------------------

def test_vendor_on_open_refund_sees_all_six_buttons(runtime: Runtime, client: TestClient) -> None:
    setup_shop(runtime)
    number = open_(runtime, comment="It does not work")
    before = show(runtime, number)
    response = client.get(f"/t/{token(runtime, 'ticket', number, Role.VENDOR)}")
    assert response.status_code == 200
    assert buttons_of(response.text) == VENDOR_SIX
    # one comment box, the six actions its buttons (each names its action)
    assert response.text.count('name="comment"') == 1
    assert response.text.count('<form method="post"') == 1
    assert re.findall(r'<button type="submit" name="action" value="(\w+)"', response.text) == [
        "reply", "close", "techsupport", "refund", "kind", "escalate"]
    assert '<label for="comment">Comment</label>' in response.text
    assert "It does not work" in response.text and "ABCD1234" in response.text
    assert show(runtime, number) == before  # opening the page changes nothing


def test_customer_on_tech_support_sees_reply_close_and_change_to_refund(
        runtime: Runtime, client: TestClient) -> None:
    setup_shop(runtime)
    number = open_(runtime, TicketType.TECH_SUPPORT)
    response = client.get(f"/t/{token(runtime, 'ticket', number)}")
    assert buttons_of(response.text) == ["Reply", "Close Ticket", "Change to Refund"]


def test_closed_ticket_shows_no_action_buttons(runtime: Runtime, client: TestClient) -> None:
    setup_shop(runtime)
    number = open_(runtime)
    act(runtime, number, Action.CLOSE, CUSTOMER)
    for party in (Role.CUSTOMER, Role.VENDOR):
        response = client.get(f"/t/{token(runtime, 'ticket', number, party)}")
        assert response.status_code == 200
        assert buttons_of(response.text) == []


def test_post_acts_only_with_the_csrf_field(runtime: Runtime, client: TestClient) -> None:
    setup_shop(runtime)
    number = open_(runtime)
    path = f"/t/{token(runtime, 'ticket', number, Role.VENDOR)}"
    csrf = csrf_of(client.get(path).text)
    before, mails = show(runtime, number), outbox_count(runtime)
    assert client.post(path, data={"action": "close"}).status_code == 403
    assert client.post(path, data={"action": "close", "csrf": "0" * 64}).status_code == 403
    other = f"/t/{token(runtime, 'ticket', number, Role.CUSTOMER)}"  # the field is per page
    assert client.post(other, data={"action": "close", "csrf": csrf}).status_code == 403
    with TestClient(client.app, follow_redirects=False) as no_cookie:
        assert no_cookie.post(path, data={"action": "close", "csrf": csrf}).status_code == 403
    assert (show(runtime, number), outbox_count(runtime)) == (before, mails)

    response = client.post(path, data={"action": "reply", "comment": "Did you try again?",
                                       "csrf": csrf})
    assert (response.status_code, response.headers["location"]) == (303, f"{path}?done=reply")
    message = show(runtime, number)["messages"][-1]
    assert (message["author_role"], message["author_email"], message["source"], message["text"]) \
        == ("vendor", "sales@acme.example", "web", "Did you try again?")
    assert "Your reply was added" in client.get(response.headers["location"]).text


def test_vendor_changes_refund_type_and_escalates(runtime: Runtime, client: TestClient) -> None:
    setup_shop(runtime)
    number = open_(runtime)
    path = f"/t/{token(runtime, 'ticket', number, Role.VENDOR)}"
    csrf = csrf_of(client.get(path).text)
    response = client.post(path, data={"action": "kind", "kind": "percent", "value": "50",
                                       "comment": "Half, as agreed", "csrf": csrf})
    assert response.status_code == 303
    view = show(runtime, number)
    assert (view["refund_kind"], view["refund_amount"]) == ("percent", "23.50")
    refused = client.post(path, data={"action": "kind", "kind": "percent", "value": "95",
                                      "comment": "", "csrf": csrf})
    assert refused.status_code == 422 and "80" in refused.text  # a wrong field, not a state
    assert show(runtime, number)["refund_amount"] == "23.50"
    assert client.post(path, data={"action": "escalate", "comment": "", "csrf": csrf}
                       ).status_code == 422
    client.post(path, data={"action": "escalate", "comment": "Customer abuses", "csrf": csrf})
    assert show(runtime, number)["escalated"] is True
    assert "Escalate" not in buttons_of(client.get(path).text)


def test_refused_action_is_409_and_changes_nothing(runtime: Runtime, client: TestClient) -> None:
    setup_shop(runtime)
    number = open_(runtime, TicketType.TECH_SUPPORT)
    path = f"/t/{token(runtime, 'ticket', number)}"
    csrf = csrf_of(client.get(path).text)
    before, mails = show(runtime, number), outbox_count(runtime)
    response = client.post(path, data={"action": "techsupport", "comment": "", "csrf": csrf})
    assert response.status_code == 409
    assert "already a tech-support ticket" in response.text
    assert (show(runtime, number), outbox_count(runtime)) == (before, mails)


def test_script_in_a_comment_is_escaped(runtime: Runtime, client: TestClient) -> None:
    setup_shop(runtime)
    number = open_(runtime, comment='<script>alert("x")</script>')
    with runtime.sessions.begin() as session:
        ticket = tickets.find_ticket(session, number)
        ticket.messages[0].html = '<p onclick="evil()">Hi<script>alert(1)</script></p>'
    page = client.get(f"/t/{token(runtime, 'ticket', number, Role.VENDOR)}")
    assert "<script>" not in page.text and "onclick" not in page.text
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page.text
    assert "<p>Hi</p>" in page.text


def test_pages_carry_security_headers(runtime: Runtime, client: TestClient) -> None:
    setup_shop(runtime)
    number = open_(runtime)
    for path in (f"/t/{token(runtime, 'ticket', number)}", "/t/bogus", "/healthz"):
        headers = client.get(path).headers
        assert headers["content-security-policy"].startswith("default-src 'none'")
        assert "form-action 'self'" in headers["content-security-policy"]
        assert headers["x-frame-options"] == "DENY"
        assert headers["referrer-policy"] == "no-referrer"


# --- tokens ----------------------------------------------------------------------------------

def test_expired_forged_and_wrong_purpose_tokens(runtime: Runtime, client: TestClient) -> None:
    setup_shop(runtime)
    number = open_(runtime)
    expired = token(runtime, "ticket", number, expires=runtime.clock.now())
    response = client.get(f"/t/{expired}")
    assert response.status_code == 410 and "newer mail" in response.text
    assert client.get(f"/a/dispute/{token(runtime, 'dispute', number, expires=runtime.clock.now())}"
                      ).status_code == 410
    good = token(runtime, "ticket", number)
    forged = good[:-3] + ("aaa" if not good.endswith("aaa") else "bbb")
    assert client.get(f"/t/{forged}").status_code == 404
    assert client.get(f"/a/dispute/{good}").status_code == 404  # a ticket token, not dispute
    assert client.get(f"/r/{good}").status_code == 404
    assert client.post(f"/t/{forged}", data={"action": "close"}).status_code == 404
    assert client.get(f"/a/unknown/{good}").status_code == 404
    assert show(runtime, number)["status"] == "open"


# --- one-click pages --------------------------------------------------------------------------

def test_dispute_page_shows_then_reopens_on_post(runtime: Runtime, client: TestClient) -> None:
    setup_shop(runtime)
    number = open_(runtime)
    act(runtime, number, Action.CLOSE, VENDOR)
    path = f"/a/dispute/{token(runtime, 'dispute', number)}"
    before, mails = show(runtime, number), outbox_count(runtime)
    page = client.get(path)
    assert page.status_code == 200 and buttons_of(page.text) == ["I Did Not Agree"]
    assert (show(runtime, number), outbox_count(runtime)) == (before, mails)
    assert client.post(path).status_code == 403
    assert client.post(path, data={"csrf": "f" * 64}).status_code == 403
    assert show(runtime, number) == before
    done = client.post(path, data={"csrf": csrf_of(page.text)})
    assert done.status_code == 200 and buttons_of(done.text) == []
    view = show(runtime, number)
    assert (view["status"], view["type"]) == ("open", "refund")
    assert view["process_at"] == "2026-11-19T09:05:00Z"  # five minutes after the dispute
    again = client.get(path)  # nothing left to dispute: said, and nothing offered
    assert again.status_code == 409 and buttons_of(again.text) == []


def test_to_refund_page_turns_tech_support_into_refund(runtime: Runtime,
                                                      client: TestClient) -> None:
    setup_shop(runtime)
    number = open_(runtime, TicketType.TECH_SUPPORT)
    path = f"/a/to-refund/{token(runtime, 'to_refund', number)}"
    before = show(runtime, number)
    page = client.get(path)
    assert buttons_of(page.text) == ["Change to Refund"]
    assert show(runtime, number) == before
    assert client.post(path, data={"csrf": "x"}).status_code == 403
    assert client.post(path, data={"csrf": csrf_of(page.text)}).status_code == 200
    view = show(runtime, number)
    assert (view["type"], view["process_at"]) == ("refund", "2026-11-20T09:00:00Z")


def test_confirm_page_starts_the_clock(runtime: Runtime, client: TestClient) -> None:
    setup_shop(runtime)
    number = open_(runtime, actor=dataclasses.replace(CUSTOMER, verified=False),
                   awaiting_confirmation=True)
    assert show(runtime, number)["process_at"] is None
    path = f"/a/confirm/{token(runtime, 'confirm', number)}"
    page = client.get(path)
    assert page.status_code == 200 and buttons_of(page.text) == ["Confirm Request"]
    assert show(runtime, number)["awaiting_confirmation"] is True
    assert client.post(path, data={}).status_code == 403
    assert show(runtime, number)["process_at"] is None
    assert client.post(path, data={"csrf": csrf_of(page.text)}).status_code == 200
    view = show(runtime, number)
    assert (view["awaiting_confirmation"], view["process_at"]) == (False, "2026-11-20T09:00:00Z")
    assert "Already confirmed" in client.get(path).text


# --- the receipt page ---------------------------------------------------------------------------

def test_receipt_page_buttons(runtime: Runtime, client: TestClient) -> None:
    order_id = setup_shop(runtime, shop_url="javascript:alert(1)")
    path = f"/r/{token(runtime, 'receipt', order_id)}"
    page = client.get(path)
    assert page.status_code == 200
    assert links_of(page.text) == ["Download", "Print Invoice"]
    assert buttons_of(page.text) == ["Email Receipt Again", "Change Email Address",
                                     "Request Tech Support", "Request a Refund"]
    assert "javascript:" not in page.text
    assert client.get(f"{path}/invoice").status_code == 200
    assert "has not given a download address" in client.get(f"{path}/download").text


def test_receipt_page_offers_cancellation_for_an_active_subscription(
        runtime: Runtime, client: TestClient) -> None:
    order_id = setup_shop(runtime, recurring=True, subscription="active",
                          shop_url="https://shop.example/get")
    page = client.get(f"/r/{token(runtime, 'receipt', order_id)}")
    assert buttons_of(page.text)[-1] == "Request a Cancellation"
    assert 'href="https://shop.example/get"' in page.text


def test_receipt_page_opens_a_refund_as_the_customer(runtime: Runtime,
                                                     client: TestClient) -> None:
    order_id = setup_shop(runtime)
    path = f"/r/{token(runtime, 'receipt', order_id)}"
    csrf = csrf_of(client.get(path).text)
    form = {"action": "open", "type": "refund", "reason": "not_satisfied",
            "comment": "Not for me", "csrf": csrf}
    assert client.post(path, data={**form, "csrf": ""}).status_code == 403
    response = client.post(path, data=form)
    assert response.status_code == 303 and response.headers["location"].startswith("/t/")
    ticket_page = client.get(response.headers["location"])
    assert "Ticket #1001" in ticket_page.text
    assert buttons_of(ticket_page.text) == ["Reply", "Close Ticket", "Change to Tech Support"]
    view = show(runtime, 1001)
    assert (view["type"], view["created_by"], view["reason"]) == (
        "refund", "customer", "not_satisfied")
    assert view["messages"][0]["source"] == "web"
    again = client.post(path, data=form)  # one open refund per order
    assert again.status_code == 409


def test_receipt_refund_outside_the_window_is_409(runtime: Runtime, client: TestClient) -> None:
    order_id = setup_shop(runtime, purchased_at="2026-08-01T10:00:00Z")
    path = f"/r/{token(runtime, 'receipt', order_id)}"
    csrf = csrf_of(client.get(path).text)
    response = client.post(path, data={"action": "open", "type": "refund", "csrf": csrf})
    assert response.status_code == 409
    assert outbox_count(runtime) == 0


def test_receipt_mailed_again_once_per_ten_minutes(runtime: Runtime, client: TestClient) -> None:
    order_id = setup_shop(runtime)
    path = f"/r/{token(runtime, 'receipt', order_id)}"
    csrf = csrf_of(client.get(path).text)
    response = client.post(path, data={"action": "resend", "csrf": csrf})
    assert (response.status_code, response.headers["location"]) == (303, f"{path}?done=resent")
    with runtime.sessions() as session:
        rows = session.execute(select(OutboxMail)).scalars().all()
        assert [(r.event, r.party, r.recipient, r.ticket_id) for r in rows] == [
            ("receipt", "customer", "ann@example.org", None)]
    assert client.post(path, data={"action": "resend", "csrf": csrf}).status_code == 409
    assert outbox_count(runtime) == 1


def test_change_email_address(runtime: Runtime, client: TestClient) -> None:
    order_id = setup_shop(runtime)
    path = f"/r/{token(runtime, 'receipt', order_id)}"
    csrf = csrf_of(client.get(path).text)
    for bad in ("not an address", "a@b", "x@example.org\r\nBcc: y@example.org"):
        assert client.post(path, data={"action": "email", "email": bad, "csrf": csrf}
                           ).status_code == 422
    response = client.post(path, data={"action": "email", "email": " Ann@New.Example ",
                                       "csrf": csrf})
    assert response.status_code == 303
    with runtime.sessions() as session:
        assert session.get(Order, order_id).customer_email == "ann@new.example"  # type: ignore[union-attr]
        event = session.execute(select(Event).where(Event.kind == "customer_email")).scalar_one()
        assert (event.old, event.new, event.actor_role) == (
            "ann@example.org", "ann@new.example", "customer")


# --- serving --------------------------------------------------------------------------------

def test_start_web_serves_on_a_free_port_and_stops(runtime: Runtime) -> None:
    async def scenario() -> tuple[int, dict[str, str]]:
        handle = await start_web(runtime, "127.0.0.1", 0)
        try:
            async with httpx.AsyncClient() as http:
                response = await http.get(f"http://127.0.0.1:{handle.port}/healthz")
        finally:
            await handle.stop()
        assert handle.task.done()
        return response.status_code, response.json()

    assert asyncio.run(scenario()) == (200, {"database": "ok", "broker": "ok"})
