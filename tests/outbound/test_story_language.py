"""A Portuguese customer and a German vendor go through a whole story by mail: every mail
either of them gets, composed as the worker sends it, is in their own language with no
English sentence left (SQLite and PostgreSQL, the real composer)."""

from __future__ import annotations

from email import message_from_bytes, policy

from sqlalchemy import select

from gateway.domain.facts import Action, Role
from gateway.services import tickets
from gateway.services.context import Actor
from gateway.services.runtime import Runtime
from outbound.compose import Composer
from store.models import OutboxMail
from tests.support.english import english_words, visible_text
from ticketgw.testing.story import CUSTOMER, VENDOR, open_refund, seed_order

NAMES = frozenset({"Ann", "Example", "Guide", "acme", "Zorblax"})
LOCALE_OF = {CUSTOMER: "pt", VENDOR: "de"}


def act(rt: Runtime, number: int, action: Action, role: Role, email: str,
        comment: str | None = None) -> int:
    with rt.sessions.begin() as session:
        return tickets.act(session, rt.context(), number, action,
                           Actor(role, email, source="web"), comment=comment).number


def test_a_pt_customer_and_a_de_vendor_get_every_mail_in_their_language(
        runtime: Runtime) -> None:
    seed_order(runtime, vendor_locale="de", customer_locale="pt", notify=True)
    number = open_refund(runtime, comment="Zorblax zorblax.")
    act(runtime, number, Action.REPLY, Role.VENDOR, VENDOR, "Zorblax?")
    act(runtime, number, Action.TECHSUPPORT, Role.VENDOR, VENDOR, "Zorblax.")
    act(runtime, number, Action.DISPUTE, Role.CUSTOMER, CUSTOMER)
    act(runtime, number, Action.ESCALATE, Role.VENDOR, VENDOR, "Zorblax!")
    act(runtime, number, Action.CLOSE, Role.CUSTOMER, CUSTOMER, "Zorblax.")
    composer = Composer(runtime.settings, runtime.tokens)
    found: dict[str, list[str]] = {}
    events = set()
    with runtime.sessions() as session:
        rows = session.execute(select(OutboxMail).where(
            OutboxMail.recipient.in_(list(LOCALE_OF))).order_by(OutboxMail.id)).scalars()
        for row in rows:
            mail = message_from_bytes(composer.compose(session, row, runtime.clock.now()).raw,
                                      policy=policy.default)
            locale = LOCALE_OF[row.recipient]
            assert mail["Content-Language"] == locale
            text, html = mail.get_body(("plain",)), mail.get_body(("html",))
            assert text is not None and html is not None
            seen = " ".join((str(mail["Subject"]), str(text.get_content()),
                             visible_text(str(html.get_content()))))
            words = english_words(seen, locale, allowed=NAMES)
            events.add(row.event)
            if words:
                found[f"{row.id} {row.event} to {row.recipient}"] = words
    assert {"receipt", "sale", "opened", "reply", "changed", "escalated", "closed"} <= events
    assert not found, found
