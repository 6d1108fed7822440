"""Money actions over HTTP (SQLite and PostgreSQL): the API refuses a reopen with nothing left
to refund and an order push that would undo our cancellation or carries several errors (all
reported); the one-click confirm and dispute pages refuse a request that can no longer run."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from gateway.domain.clock import FrozenClock
from gateway.domain.facts import Action, Role, TicketType
from gateway.services import deadlines, tickets
from gateway.services.context import Actor
from gateway.services.runtime import Runtime
from store.models import Order
from tests.web.test_api import (
    CUSTOMER,
    assert_error,
    bearer,
    counts,
    line,
    make_key,
    setup_shop,
    show,
)
from tests.web.test_pages import csrf_of, token
from ticketgw.testing.runtime import START
from web.api import PREFIX
from web.app import create_app

CLUB = {"recurring": True, "sku": "club", "title": "Club"}


@pytest.fixture
def app(runtime: Runtime) -> Iterator[TestClient]:
    setup_shop(runtime)
    with TestClient(create_app(runtime), follow_redirects=False) as client:
        yield client


def sweep(rt: Runtime, days: int) -> deadlines.SweepResult:
    return deadlines.run_due(rt.sessions, lambda: rt.context(START + timedelta(days=days)),
                             rt.refunds)


def open_(rt: Runtime, kind: TicketType = TicketType.REFUND, receipt: str = "ABCD1234",
          **kw: Any) -> int:
    with rt.sessions.begin() as session:
        return tickets.open_ticket(session, rt.context(), receipt, kind, CUSTOMER, **kw).number


def club_order(rt: Runtime, app: TestClient, staff: dict[str, str]) -> dict[str, Any]:
    body = line(receipt="CLUB0001", **CLUB)
    assert app.post(PREFIX + "/orders", headers=staff, json=body).status_code == 201
    return body


def test_api_reopen_with_nothing_left_to_refund_is_409(runtime: Runtime,
                                                      app: TestClient) -> None:
    staff = bearer(make_key(runtime))
    number = open_(runtime)
    assert sweep(runtime, 2).processed == 1
    before = counts(runtime), show(runtime, number)
    response = app.post(f"{PREFIX}/tickets/{number}/actions", headers=staff,
                        json={"action": "reopen", "comment": "Customer called"})
    assert_error(response, 409, "conflict")
    assert "refunded in full" in response.json()["error"]["message"]
    assert (counts(runtime), show(runtime, number)) == before


def test_api_order_push_keeps_our_cancellation(runtime: Runtime, app: TestClient) -> None:
    staff = bearer(make_key(runtime))
    body = club_order(runtime, app, staff)
    number = open_(runtime, TicketType.CANCELLATION, "CLUB0001")
    sweep(runtime, 2)
    again = app.post(PREFIX + "/orders", headers=staff, json=body)
    assert again.status_code == 200, again.text
    with runtime.sessions() as session:
        assert session.execute(select(Order.subscription).where(
            Order.receipt == "CLUB0001")).scalar_one() == "cancelled"
    later = {**body, "payments": [{"at": "2026-11-10T10:00:00Z", "amount": "47.00"},
                                  {"at": "2026-11-21T10:00:00Z", "amount": "47.00"},
                                  {"at": "2026-11-30T10:00:00Z", "amount": "47.00"}]}
    before = counts(runtime)
    assert isinstance(runtime.clock, FrozenClock)
    runtime.clock.set(START + timedelta(days=3))  # 2026-11-22T09:00:00Z
    response = app.post(PREFIX + "/orders", headers=staff, json=later)
    assert_error(response, 422, "invalid_field")  # a date error and conflicts: every one
    assert response.json()["error"]["message"] == (
        "The payment of 2026-11-30T10:00:00Z is in the future (it is now 2026-11-22T09:00:00Z); "
        "the payment of 2026-11-21T10:00:00Z comes after the subscription was cancelled on "
        f"2026-11-21T09:00:00Z (ticket #{number}), and a cancelled subscription takes no "
        "further bills; the payment of 2026-11-30T10:00:00Z comes after the subscription was "
        f"cancelled on 2026-11-21T09:00:00Z (ticket #{number}), and a cancelled subscription "
        "takes no further bills.")
    assert counts(runtime) == before


def test_api_order_push_reports_every_error(runtime: Runtime, app: TestClient) -> None:
    staff = bearer(make_key(runtime))
    before = counts(runtime)
    response = app.post(PREFIX + "/orders", headers=staff, json=line(
        receipt="NEW00009", currency="dollars", vendor="nobody"))
    assert_error(response, 422)
    assert response.json()["error"]["message"].split("; ")[0] == (
        "Currency 'DOLLARS' must be a 3-letter code such as USD")
    assert response.json()["error"]["message"].split("; ")[1].startswith(
        "unknown vendor 'nobody'")
    assert counts(runtime) == before


def test_confirm_page_refuses_a_cancellation_that_ended(runtime: Runtime,
                                                        app: TestClient) -> None:
    staff = bearer(make_key(runtime))
    club_order(runtime, app, staff)
    number = open_(runtime, TicketType.CANCELLATION, "CLUB0001",
                   awaiting_confirmation=True)
    path = f"/a/confirm/{token(runtime, 'confirm', number)}"
    form = app.get(path)  # the customer opens the link, and waits
    assert form.status_code == 200
    open_(runtime, TicketType.REFUND, "CLUB0001")
    assert sweep(runtime, 2).processed == 1  # the refund cancels the subscription
    before = counts(runtime)
    answer = app.post(path, data={"csrf": csrf_of(form.text)})
    assert answer.status_code == 409 and "already cancelled" in answer.text
    assert "cannot be confirmed" in answer.text
    page = app.get(path)
    assert page.status_code == 409 and "already cancelled" in page.text
    assert counts(runtime) == before
    assert show(runtime, number)["awaiting_confirmation"] is True


def test_dispute_page_refuses_to_bring_back_a_cancellation_that_ended(
        runtime: Runtime, app: TestClient) -> None:
    staff = bearer(make_key(runtime))
    club_order(runtime, app, staff)
    number = open_(runtime, TicketType.CANCELLATION, "CLUB0001")
    open_(runtime, TicketType.REFUND, "CLUB0001")
    with runtime.sessions.begin() as session:
        tickets.act(session, runtime.context(), number, Action.CLOSE,
                    Actor(Role.VENDOR, "sales@acme.example", source="web"))
    sweep(runtime, 2)  # the refund cancels the subscription
    page = app.get(f"/a/dispute/{token(runtime, 'dispute', number)}")
    assert page.status_code == 409 and "cannot be brought back" in page.text
    assert show(runtime, number)["status"] == "closed"
