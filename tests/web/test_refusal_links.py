"""A page that refuses because of another ticket links that ticket, signed for the same party:
the ticket page's actions and the one-click pages, as the receipt page already does."""

from __future__ import annotations

import html as html_lib
import re
from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from gateway.domain.facts import Role, TicketType
from gateway.domain.rules import already_open
from gateway.services import i18n
from gateway.services.runtime import Runtime
from store.models import Order
from tests.web.test_pages import CUSTOMER, csrf_of, open_, setup_shop, show, token
from web.app import create_app

VIEWING = {Role.CUSTOMER: "You are viewing this ticket as the customer.",
           Role.VENDOR: "You are viewing this ticket as the vendor."}


@pytest.fixture
def client(runtime: Runtime) -> Iterator[TestClient]:
    with TestClient(create_app(runtime), follow_redirects=False) as test_client:
        yield test_client


def refund_and_tech_support(rt: Runtime, *, vendor_locale: str = "en") -> tuple[int, int]:
    """An order with an open refund request and, opened after it, a tech-support ticket:
    (refund, tech support)."""
    setup_shop(rt, vendor_locale=vendor_locale)
    refund = open_(rt, TicketType.REFUND, reason="not_received")
    return refund, open_(rt, TicketType.TECH_SUPPORT, actor=CUSTOMER)


def linked_ticket(client: TestClient, page: str, number: int, locale: str = "en") -> str:
    """The page the refusal's link to ticket #number opens."""
    text = i18n.gettext("Open ticket #%(n)s", locale=locale) % {"n": number}
    found = re.search(r'<a href="(/t/[^"]+)">' + re.escape(text) + "</a>", page)
    assert found, page
    opened = client.get(html_lib.unescape(found.group(1)))
    assert opened.status_code == 200, opened.text
    return opened.text


@pytest.mark.parametrize("party", [Role.CUSTOMER, Role.VENDOR])
def test_the_ticket_page_links_the_open_refund_it_refuses_for(
        runtime: Runtime, client: TestClient, party: Role) -> None:
    refund, support = refund_and_tech_support(runtime)
    path = f"/t/{token(runtime, 'ticket', support, party)}"
    before = show(runtime, support)
    refused = client.post(path, data={"action": "refund", "comment": "",
                                      "csrf": csrf_of(client.get(path).text)})
    assert refused.status_code == 409, refused.text
    assert f"already has an open refund ticket, #{refund}" in refused.text
    assert show(runtime, support) == before
    opened = linked_ticket(client, refused.text, refund)
    assert f"#{refund}" in opened and VIEWING[party] in opened  # the same party's view


def test_the_to_refund_page_links_the_open_refund_in_the_readers_language(
        runtime: Runtime, client: TestClient) -> None:
    refund, support = refund_and_tech_support(runtime)
    with runtime.sessions.begin() as session:  # the customer reads Portuguese
        session.query(Order).one().locale = "pt"
    path = f"/a/to-refund/{token(runtime, 'to_refund', support)}"
    before = show(runtime, support)
    refused = client.get(path)
    assert refused.status_code == 409, refused.text
    said = i18n.say(already_open(TicketType.REFUND, refund).message, "pt")
    assert said[1:] in html_lib.unescape(refused.text)  # as a sentence: capital first
    assert show(runtime, support) == before
    opened = linked_ticket(client, refused.text, refund, "pt")
    assert i18n.gettext("You are viewing this ticket as the customer. Times are in %(zone)s.",
                        locale="pt").split("%")[0] in opened


def test_a_refusal_that_names_no_ticket_links_none(runtime: Runtime, client: TestClient) -> None:
    setup_shop(runtime)
    support = open_(runtime, TicketType.TECH_SUPPORT)
    path = f"/t/{token(runtime, 'ticket', support)}"
    refused = client.post(path, data={"action": "techsupport", "comment": "",
                                      "csrf": csrf_of(client.get(path).text)})
    assert refused.status_code == 409
    assert "Open ticket #" not in refused.text
