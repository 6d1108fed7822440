"""The ticket page names who forwarded a customer's mail, beside the customer it is from."""

from __future__ import annotations

from sqlalchemy import update
from starlette.testclient import TestClient

from gateway.domain.facts import Role, TicketType
from gateway.services import tickets
from gateway.services.context import Actor, MailOrigin
from gateway.services.runtime import Runtime
from store.models import Message
from tests.web.test_pages import setup_shop, token
from web.app import create_app


def test_the_page_says_who_forwarded_the_customers_mail(runtime: Runtime) -> None:
    setup_shop(runtime)
    customer = Actor(Role.CUSTOMER, "ann@example.org", source="email", verified=False)
    with runtime.sessions.begin() as session:
        number = tickets.open_ticket(session, runtime.context(), "ABCD1234",
                                     TicketType.TECH_SUPPORT, customer,
                                     comment="The link says 404.").number
        session.execute(update(Message).values(forwarded_by="help@acme.example"))
    with TestClient(create_app(runtime)) as client:
        page = client.get(f"/t/{token(runtime, 'ticket', number, Role.CUSTOMER)}").text
    assert "(ann@example.org), forwarded by help@acme.example," in page


def test_the_whole_message_as_received_is_one_click_away(runtime: Runtime) -> None:
    setup_shop(runtime)
    whole = "Thanks, it works.\n\nOn Mon, Support wrote:\n> try the <new> link"
    customer = Actor(Role.CUSTOMER, "ann@example.org", source="email")
    with runtime.sessions.begin() as session:
        number = tickets.open_ticket(session, runtime.context(), "ABCD1234",
                                     TicketType.TECH_SUPPORT, customer,
                                     comment="Thanks, it works.",
                                     origin=MailOrigin(original=whole)).number
    with TestClient(create_app(runtime)) as client:
        page = client.get(f"/t/{token(runtime, 'ticket', number, Role.VENDOR)}").text
    details = page[page.index("<details>"):page.index("</details>")]
    assert "Whole message as received" in details
    assert "&gt; try the &lt;new&gt; link" in details  # escaped, shown whole
