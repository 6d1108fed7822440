"""The workplace over HTTP on SQLite and PostgreSQL: signing in by a mailed single-use link,
CSRF on every POST, a vendor confined to its own tickets and orders, staff seeing all,
search, pagination, answering and opening tickets, settings, standing and review."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from starlette.testclient import TestClient

from gateway.domain.clock import FrozenClock
from gateway.domain.facts import Action, Role, TicketType
from gateway.services import orders, tickets, vendors
from gateway.services.context import Actor
from gateway.services.runtime import Runtime
from gateway.services.views import ticket_view
from outbound.compose import Composer
from store.models import Event, Message, OutboxMail, SigninLink, Vendor, WorkplaceSession
from ticketgw.testing.runtime import make_runtime
from web.app import create_app

STAFF = Actor(Role.STAFF, source="cli")
CUSTOMER = Actor(Role.CUSTOMER, "ann@example.org", source="email")
ACME = Actor(Role.VENDOR, "help@acme.example", source="email")
GLOBEX = Actor(Role.VENDOR, "sales@globex.example", source="email")
STAFF_EMAIL = "staff@tickets.localhost"


def add_order(rt: Runtime, receipt: str, vendor: str, customer: str = "ann@example.org",
              **line: Any) -> None:
    values: dict[str, Any] = {
        "receipt": receipt, "vendor": vendor, "sku": "guide", "title": "The Guide",
        "kind": "digital", "recurring": False, "customer_email": customer,
        "customer_name": "Ann", "quantity": 1, "amount": "47.00", "currency": "USD",
        "purchased_at": "2026-11-10T10:00:00Z", "locale": "en"}
    values.update(line)
    with rt.sessions.begin() as session:
        orders.upsert_order(session, rt.context(), orders.parse_line(values))


def open_(rt: Runtime, receipt: str, kind: TicketType = TicketType.REFUND,
          actor: Actor = CUSTOMER) -> int:
    with rt.sessions.begin() as session:
        return tickets.open_ticket(session, rt.context(), receipt, kind, actor).number


def act(rt: Runtime, number: int, action: Action, actor: Actor) -> None:
    with rt.sessions.begin() as session:
        tickets.act(session, rt.context(), number, action, actor)


def seed(rt: Runtime) -> dict[str, int]:
    """acme (two orders, one ticket) and globex (one order, one ticket)."""
    with rt.sessions.begin() as session:
        vendors.add_vendor(session, rt.context(), STAFF, "acme", "sales@acme.example",
                           cs_email="help@acme.example", timezone="Europe/Berlin")
        vendors.add_vendor(session, rt.context(), STAFF, "globex", "sales@globex.example")
    add_order(rt, "ABCD1234", "acme")
    add_order(rt, "EFGH5678", "acme", customer="bob@example.org")
    add_order(rt, "WXYZ0001", "globex")
    return {"acme": open_(rt, "EFGH5678"), "globex": open_(rt, "WXYZ0001")}


@pytest.fixture
def client(runtime: Runtime) -> Iterator[TestClient]:
    with TestClient(create_app(runtime), follow_redirects=False) as test_client:
        yield test_client


def csrf_of(html: str) -> str:
    """The CSRF field of the page's own forms (not of the sign-out form in its navigation)."""
    html = re.sub(r'<form method="post" action="/signout">.*?</form>', "", html)
    found = re.search(r'name="csrf" value="([0-9a-f]+)"', html)
    assert found, "the page has no form"
    return found.group(1)


def count(rt: Runtime, model: type[Any]) -> int:
    with rt.sessions() as session:
        return int(session.execute(select(func.count()).select_from(model)).scalar_one())


def mailed_link(rt: Runtime, to: str) -> str:
    """The sign-in link in the newest sign-in mail to `to`, rendered as the worker sends it."""
    with rt.sessions() as session:
        row = session.execute(select(OutboxMail).where(
            OutboxMail.event == "signin", OutboxMail.recipient == to)
            .order_by(OutboxMail.id.desc()).limit(1)).scalar_one()
        raw = Composer(rt.settings, rt.tokens).compose(session, row, rt.clock.now()).raw
    mail = message_from_bytes(raw, policy=policy.default)
    assert mail["Subject"] == "Your Sign-in Link" and mail["To"] == to
    body = mail.get_body(("plain",))
    assert body is not None
    found = re.search(r"https?://[^/\s]+(/signin/[a-z2-7]+)", body.get_content())
    assert found, "no sign-in link in the mail"
    return found.group(1)


def ask_link(client: TestClient, address: str) -> str:
    csrf = csrf_of(client.get("/signin").text)
    response = client.post("/signin", data={"email": address, "csrf": csrf})
    assert response.status_code == 200
    return response.text


def sign_in(client: TestClient, rt: Runtime, address: str) -> None:
    ask_link(client, address)
    link = mailed_link(rt, address)
    page = client.get(link)
    assert page.status_code == 200
    response = client.post(link, data={"csrf": csrf_of(page.text)})
    assert (response.status_code, response.headers["location"]) == (303, "/w/tickets")


def numbers(html: str) -> list[int]:
    return [int(n) for n in re.findall(r'<a href="/w/tickets/(\d+)">#', html)]


# --- signing in ------------------------------------------------------------------------------

def test_a_vendor_signs_in_with_the_mailed_link_and_sees_its_tickets(
        runtime: Runtime, client: TestClient) -> None:
    made = seed(runtime)
    assert client.get("/w/tickets").headers["location"] == "/signin"
    sign_in(client, runtime, "help@acme.example")
    page = client.get("/w/tickets")
    assert page.status_code == 200 and "acme · help@acme.example" in page.text
    assert numbers(page.text) == [made["acme"]]
    with runtime.sessions() as session:
        event = session.execute(select(Event).where(Event.kind == "signed_in")).scalar_one()
        assert (event.actor_role, event.actor_email) == ("vendor", "help@acme.example")


def test_the_session_cookie_is_httponly_lax_and_secure_on_https(tmp_path: Path,
                                                                migrated_url: str) -> None:
    rt = make_runtime(migrated_url, tmp_path, base_url="https://tickets.example")
    try:
        seed(rt)
        with TestClient(create_app(rt), base_url="https://tickets.example",
                        follow_redirects=False) as client:
            ask_link(client, "sales@acme.example")
            link = mailed_link(rt, "sales@acme.example")
            response = client.post(link, data={"csrf": csrf_of(client.get(link).text)})
        cookie = next(c for c in response.headers.get_list("set-cookie")
                      if c.startswith("ticketgw_session="))
        assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Secure" in cookie
        assert "Max-Age=28800" in cookie  # 8 hours
    finally:
        rt.close()


def test_the_signin_page_says_the_same_whether_or_not_it_knows_the_address(
        runtime: Runtime, client: TestClient) -> None:
    seed(runtime)
    known = ask_link(client, "help@acme.example")
    unknown = ask_link(client, "nobody@example.org")
    assert known.replace("help@acme.example", "X") == unknown.replace("nobody@example.org", "X")
    with runtime.sessions() as session:
        sent = session.execute(select(OutboxMail.recipient).where(
            OutboxMail.event == "signin")).scalars().all()
    assert sent == ["help@acme.example"]


def test_staff_sign_in_at_the_staff_address(runtime: Runtime, client: TestClient) -> None:
    made = seed(runtime)
    sign_in(client, runtime, STAFF_EMAIL)
    page = client.get("/w/tickets")
    assert sorted(numbers(page.text)) == sorted(made.values())
    assert "Staff · staff@tickets.localhost" in page.text


def test_a_link_is_refused_once_expired(runtime: Runtime, client: TestClient) -> None:
    seed(runtime)
    ask_link(client, "help@acme.example")
    link = mailed_link(runtime, "help@acme.example")
    csrf = csrf_of(client.get(link).text)
    assert isinstance(runtime.clock, FrozenClock)
    runtime.clock.advance(timedelta(minutes=15))
    for response in (client.get(link), client.post(link, data={"csrf": csrf})):
        assert response.status_code == 410 and "Ask for a new one" in response.text
    assert count(runtime, WorkplaceSession) == 0
    assert client.get("/w/tickets").status_code == 303


def test_a_link_works_once(runtime: Runtime, client: TestClient) -> None:
    seed(runtime)
    ask_link(client, "help@acme.example")
    link = mailed_link(runtime, "help@acme.example")
    page = client.get(link)
    assert client.get(link).status_code == 200  # opening it (a mail scanner) spends nothing
    client.post(link, data={"csrf": csrf_of(page.text)})
    with TestClient(client.app, follow_redirects=False) as other:
        again = other.post(link, data={"csrf": csrf_of(other.get("/signin").text)})
        assert again.status_code == 403  # the form of another page does not pass...
        csrf = csrf_of(other.get("/signin").text)
        other.cookies.set("ticketgw_csrf", other.cookies["ticketgw_csrf"])
        reused = other.get(link)
        assert reused.status_code == 410 and "Link used" in reused.text
        assert other.post(link, data={"csrf": csrf}).status_code in (403, 410)
        assert other.get("/w/tickets").status_code == 303
    assert count(runtime, WorkplaceSession) == 1


def test_a_forged_link_or_cookie_opens_nothing(runtime: Runtime, client: TestClient) -> None:
    seed(runtime)
    ask_link(client, "help@acme.example")
    link = mailed_link(runtime, "help@acme.example")
    forged = link[:-3] + ("aaa" if not link.endswith("aaa") else "bbb")
    assert client.get(forged).status_code == 404
    ticket_token = runtime.tokens.sign("ticket", 1, Role.VENDOR, runtime.clock.now()
                                       + timedelta(days=1))
    assert client.get(f"/signin/{ticket_token}").status_code == 404  # another purpose
    client.cookies.set("ticketgw_session", ticket_token)
    assert client.get("/w/tickets").status_code == 303


def test_signing_out_ends_the_session_on_the_server(runtime: Runtime,
                                                    client: TestClient) -> None:
    seed(runtime)
    sign_in(client, runtime, "help@acme.example")
    cookie = client.cookies["ticketgw_session"]
    page = client.get("/w/tickets")
    signout = re.search(r'action="/signout"><input type="hidden" name="csrf" value="([0-9a-f]+)"',
                        page.text)
    assert signout
    assert client.post("/signout", data={"csrf": "0" * 64}).status_code == 403
    response = client.post("/signout", data={"csrf": signout.group(1)})
    assert (response.status_code, response.headers["location"]) == (303, "/signin?done=out")
    client.cookies.set("ticketgw_session", cookie)  # a copy of the cookie kept somewhere
    assert client.get("/w/tickets").status_code == 303


def test_an_address_gets_at_most_five_links_an_hour(runtime: Runtime,
                                                    client: TestClient) -> None:
    seed(runtime)
    for _ in range(7):
        ask_link(client, "help@acme.example")
    assert count(runtime, SigninLink) == 5


# --- a vendor sees only its own ---------------------------------------------------------------

def test_a_vendor_never_reaches_another_vendors_tickets_or_orders(
        runtime: Runtime, client: TestClient) -> None:
    made = seed(runtime)
    sign_in(client, runtime, "help@acme.example")
    csrf = csrf_of(client.get(f"/w/tickets/{made['acme']}").text)
    before = ticket_view(_ticket(runtime, made["globex"]))
    for path in (f"/w/tickets/{made['globex']}", "/w/orders/WXYZ0001", "/w/tickets/999999",
                 "/w/vendors", "/w/review", "/w/vendors/globex", "/w/vendors/acme/settings"):
        response = client.get(path)
        assert response.status_code == 404, path
        assert "WXYZ0001" not in response.text and "globex" not in response.text
    for path, form in ((f"/w/tickets/{made['globex']}", {"action": "close"}),
                       ("/w/orders/WXYZ0001", {"type": "refund"}),
                       ("/w/vendors/globex/right", {"allowed": "0"})):
        assert client.post(path, data={**form, "csrf": csrf}).status_code in (403, 404)
    assert ticket_view(_ticket(runtime, made["globex"])) == before
    for query in ("WXYZ0001", f"#{made['globex']}", "ann@example.org"):
        assert made["globex"] not in numbers(client.get("/w/tickets", params={
            "q": query, "status": "all"}).text)
    assert "0 orders" in client.get("/w/orders", params={"q": "WXYZ0001"}).text
    assert "/w/orders/WXYZ0001" not in client.get("/w/orders", params={"vendor": "globex"}).text
    assert "WXYZ0001" not in client.get("/w/tickets", params={"vendor": "globex"}).text


def _ticket(rt: Runtime, number: int) -> Any:
    with rt.sessions() as session:
        ticket = tickets.find_ticket(session, number)
        ticket_view(ticket)  # loads what the view reads
        return ticket


def test_search_by_number_receipt_and_customer_address(runtime: Runtime,
                                                       client: TestClient) -> None:
    made = seed(runtime)
    other = open_(runtime, "ABCD1234", TicketType.TECH_SUPPORT)
    sign_in(client, runtime, "help@acme.example")

    def found(q: str, status: str = "open") -> list[int]:
        return numbers(client.get("/w/tickets", params={"q": q, "status": status}).text)

    assert found(f"#{made['acme']}") == [made["acme"]] == found(str(made["acme"]))
    assert found("efgh5678") == [made["acme"]]
    assert found("BOB@example.org") == [made["acme"]]
    assert found("ann@example.org") == [other]
    assert found("NOPE0000") == []
    act(runtime, other, Action.CLOSE, CUSTOMER)
    assert found("ann@example.org") == []
    assert found("ann@example.org", "closed") == found("ann@example.org", "all") == [other]


def test_tickets_are_paginated_soonest_deadline_first(runtime: Runtime,
                                                      client: TestClient) -> None:
    seed(runtime)
    opened = []
    for i in range(30):  # refunds: due 24 business hours after they were opened
        add_order(runtime, f"PAGE{i:04d}", "acme")
        assert isinstance(runtime.clock, FrozenClock)
        runtime.clock.advance(timedelta(minutes=1))
        opened.append(open_(runtime, f"PAGE{i:04d}"))
    sign_in(client, runtime, "help@acme.example")
    first = client.get("/w/tickets").text
    second = client.get("/w/tickets", params={"page": "2"}).text
    assert "31 tickets" in first and "Page 1 of 2" in first
    everything = [1001, *opened]  # #1001 was opened first: its deadline is the soonest
    assert numbers(first) == everything[:25] and numbers(second) == everything[25:]
    assert 'href="/w/tickets?page=2" rel="next"' in first
    assert numbers(client.get("/w/tickets", params={"page": "99"}).text) == []


# --- working from the workplace -------------------------------------------------------------

def test_a_vendor_answers_a_ticket_from_the_workplace(runtime: Runtime,
                                                      client: TestClient) -> None:
    made = seed(runtime)
    sign_in(client, runtime, "help@acme.example")
    path = f"/w/tickets/{made['acme']}"
    page = client.get(path)
    assert "Please Refund" in page.text and "Reopen Ticket" not in page.text
    before = count(runtime, Message)
    assert client.post(path, data={"action": "reply", "comment": "Hello"}).status_code == 403
    assert count(runtime, Message) == before
    response = client.post(path, data={"action": "reply", "comment": "Did it download?",
                                       "csrf": csrf_of(page.text)})
    assert response.status_code == 303, response.text
    assert response.headers["location"] == f"{path}?done=reply"
    with runtime.sessions() as session:
        message = session.execute(select(Message).order_by(Message.id.desc()).limit(1)
                                  ).scalar_one()
        assert (message.author_role, message.source, message.text) == (
            "vendor", "web", "Did it download?")
    assert "Your reply was added" in client.get(response.headers["location"]).text


def test_a_vendor_opens_a_ticket_from_an_order(runtime: Runtime, client: TestClient) -> None:
    seed(runtime)
    sign_in(client, runtime, "help@acme.example")
    page = client.get("/w/orders")
    assert "ABCD1234" in page.text and "EFGH5678" in page.text and "WXYZ0001" not in page.text
    assert "Order ABCD1234" in client.get("/w/orders/abcd1234").text
    order = client.get("/w/orders/ABCD1234")
    assert "Open a Refund Ticket" in order.text
    assert "Open a Cancellation Ticket" not in order.text  # no subscription to cancel
    csrf = csrf_of(order.text)
    assert client.post("/w/orders/ABCD1234", data={"type": "refund"}).status_code == 403
    response = client.post("/w/orders/ABCD1234", data={
        "type": "refund", "reason": "duplicate", "comment": "Bought twice", "csrf": csrf})
    assert response.status_code == 303
    number = int(response.headers["location"].split("/")[3].split("?")[0])
    view = ticket_view(_ticket(runtime, number))
    assert (view["created_by"], view["reason"], view["process_at"]) == (
        "vendor", "duplicate", "2026-11-19T09:05:00Z")  # vendor-created: in 5 minutes
    assert "The ticket is open" in client.get(response.headers["location"]).text
    refused = client.post("/w/orders/ABCD1234", data={"type": "refund", "csrf": csrf})
    assert refused.status_code == 409


def test_settings_are_saved_and_contact_details_shown_to_customers(
        runtime: Runtime, client: TestClient) -> None:
    made = seed(runtime)
    sign_in(client, runtime, "help@acme.example")
    csrf = csrf_of(client.get("/w/settings").text)
    form = {"cs_email": "care@acme.example", "timezone": "America/New_York", "locale": "fr",
            "partial_refunds": "on", "contact_phone": "+1 555 0100", "csrf": csrf,
            "contact_site": "https://help.acme.example", "contact_hours": "Mon–Fri 9–17"}
    bad = client.post("/w/settings", data={**form, "contact_site": "javascript:alert(1)"})
    assert bad.status_code == 409 and "https://" in bad.text
    assert client.post("/w/settings", data=form).headers["location"] == (
        "/w/settings?done=settings")
    with runtime.sessions() as session:
        vendor = vendors.find_vendor(session, "acme")
        assert (vendor.cs_email, vendor.timezone, vendor.locale, vendor.partial_refunds_enabled,
                vendor.contact_phone, vendor.contact_hours) == (
            "care@acme.example", "America/New_York", "fr", True, "+1 555 0100", "Mon–Fri 9–17")
        kinds = set(session.execute(select(Event.kind).where(
            Event.vendor_id == vendor.id)).scalars())
    assert {"vendor_cs_email", "vendor_timezone", "vendor_contact_phone"} <= kinds
    receipt = runtime.tokens.sign("receipt", _order_id(runtime, "EFGH5678"), Role.CUSTOMER,
                                  runtime.clock.now() + timedelta(days=1))
    for path in (f"/r/{receipt}", "/t/" + runtime.tokens.sign(
            "ticket", made["acme"], Role.CUSTOMER, runtime.clock.now() + timedelta(days=1))):
        shown = client.get(path).text
        assert "+1 555 0100" in shown and 'href="https://help.acme.example"' in shown
        assert "care@acme.example" in shown and "sales@acme.example" not in shown
    cleared = {**form, "cs_email": "", "contact_phone": "", "csrf": csrf}
    client.post("/w/settings", data=cleared)
    with runtime.sessions() as session:
        vendor = vendors.find_vendor(session, "acme")
        assert (vendor.cs_email, vendor.contact_phone) == (None, None)


def _order_id(rt: Runtime, receipt: str) -> int:
    with rt.sessions() as session:
        return tickets.find_order(session, receipt).id


# --- standing, staff and the review queue ------------------------------------------------------

def test_standing_shows_disputes_and_revocation(runtime: Runtime, client: TestClient) -> None:
    made = seed(runtime)
    act(runtime, made["acme"], Action.CLOSE, ACME)
    act(runtime, made["acme"], Action.DISPUTE, CUSTOMER)
    sign_in(client, runtime, "help@acme.example")
    page = client.get("/w/standing").text
    assert "1 of 2 before the right is revoked" in page and f"#{made['acme']}" in page
    with runtime.sessions.begin() as session:
        vendors.set_privilege(session, runtime.context(), STAFF, "acme", False)
    page = client.get("/w/standing").text
    assert "Revoked" in page and "by Customer Service" in page and "Restore" not in page


def test_staff_review_the_queue_and_restore_a_vendors_right(runtime: Runtime,
                                                            client: TestClient) -> None:
    made = seed(runtime)
    for number, vendor in ((made["acme"], ACME), (made["globex"], GLOBEX)):
        act(runtime, number, Action.CLOSE, vendor)
        act(runtime, number, Action.DISPUTE, CUSTOMER)
    second = open_(runtime, "ABCD1234")
    act(runtime, second, Action.TECHSUPPORT, ACME)
    act(runtime, second, Action.DISPUTE, CUSTOMER)  # acme's second dispute: revoked
    sign_in(client, runtime, STAFF_EMAIL)
    queue = client.get("/w/review").text
    assert queue.count("Disputed by the customer") == 3
    assert "Right to answer revoked" in queue and "Closed by the vendor" in queue
    assert "Changed by the vendor: Refund Request → Tech Support Request" in queue
    assert "14 to review" not in queue
    before = re.search(r"(\d+) to review", queue)
    assert before
    event = re.search(r'name="event" value="(\d+)"', queue)
    assert event
    client.post("/w/review", data={"event": event.group(1), "csrf": csrf_of(queue)})
    after = re.search(r"(\d+) to review", client.get("/w/review").text)
    assert after and int(after.group(1)) == int(before.group(1)) - 1
    assert "Reviewed" in client.get("/w/review", params={"all": "1"}).text

    vendor_page = client.get("/w/vendors/acme").text
    assert "Revoked" in vendor_page and "2 disputes" in vendor_page
    form = {"allowed": "1", "csrf": csrf_of(vendor_page)}
    assert client.post("/w/vendors/acme/right", data={"allowed": "1"}).status_code == 403
    response = client.post("/w/vendors/acme/right", data=form)
    assert response.headers["location"] == "/w/vendors/acme?done=restored"
    with runtime.sessions() as session:
        acme = session.execute(select(Vendor).where(Vendor.nickname == "acme")).scalar_one()
        assert (acme.may_respond, acme.dispute_count) == (True, 0)
    listed = client.get("/w/vendors").text
    assert "acme" in listed and "globex" in listed


def test_staff_reopen_a_closed_ticket_from_the_workplace(runtime: Runtime,
                                                         client: TestClient) -> None:
    made = seed(runtime)
    act(runtime, made["globex"], Action.CLOSE, CUSTOMER)
    sign_in(client, runtime, STAFF_EMAIL)
    path = f"/w/tickets/{made['globex']}"
    page = client.get(path).text
    assert "Reopen Ticket" in page
    response = client.post(path, data={"action": "reopen", "comment": "Looked again",
                                       "csrf": csrf_of(page)})
    assert response.status_code == 303
    assert ticket_view(_ticket(runtime, made["globex"]))["status"] == "open"
    staff_tickets = client.get("/w/tickets", params={"vendor": "globex"}).text
    assert numbers(staff_tickets) == [made["globex"]]
    assert client.get("/w/tickets", params={"vendor": "nobody"}).status_code == 404
