"""The ticket page shows the customer's own subject, and marks a comment whose sender was not
verified (a mail matched by subject token and From only)."""

from __future__ import annotations

from starlette.testclient import TestClient

from gateway.domain.facts import Action, Role, TicketType
from gateway.services import tickets
from gateway.services.context import Actor, MailOrigin
from gateway.services.runtime import Runtime
from tests.web.test_pages import STAFF, setup_shop, token
from web.app import create_app


def test_the_page_shows_the_title_and_marks_an_unverified_sender(runtime: Runtime) -> None:
    setup_shop(runtime)
    customer = Actor(Role.CUSTOMER, "ann@example.org", source="email")
    with runtime.sessions.begin() as session:
        number = tickets.open_ticket(
            session, runtime.context(), "ABCD1234", TicketType.TECH_SUPPORT, customer,
            comment="The link says 404.",
            origin=MailOrigin(subject="Re: Fwd: Download <broken> again")).number
        tickets.act(session, runtime.context(), number, Action.REPLY,
                    Actor(Role.CUSTOMER, "ann@example.org", source="email", verified=False),
                    comment="Any news?")
        tickets.act(session, runtime.context(), number, Action.REPLY, STAFF, comment="Soon.")
    with TestClient(create_app(runtime)) as client:
        page = client.get(f"/t/{token(runtime, 'ticket', number, Role.VENDOR)}").text
    # the customer's words, without the reply prefixes their client added, escaped
    assert "<q>Download &lt;broken&gt; again</q>" in page
    assert page.count("(sender not verified)") == 1
    marked = page.index("(sender not verified)")
    assert page.index("Any news?") > marked > page.index("The link says 404.")
