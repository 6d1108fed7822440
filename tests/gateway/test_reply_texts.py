"""Vendors' reply templates and signatures (both profiles), on SQLite and PostgreSQL: kept,
refused at save time when they would fail, rendered in the vendor's locale, signed once."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import func, select

from gateway.domain.errors import NotFound, UserError
from gateway.domain.facts import Action, Role, TicketType
from gateway.services import i18n, orders, tickets, vendor_texts, vendors
from gateway.services.context import Actor
from gateway.services.runtime import Runtime
from gateway.services.views import ticket_view
from store.models import ReplyTemplate

STAFF = Actor(Role.STAFF, source="cli")
CUSTOMER = Actor(Role.CUSTOMER, "ann@example.org", source="web")
VENDOR = Actor(Role.VENDOR, "sales@acme.example", source="web")
NOW = datetime(2026, 11, 19, 9, 0, tzinfo=UTC)

# a refund opened at NOW (Thursday 10:00 in Berlin) runs on Friday 10:00 there: shown in the
# vendor's locale and zone as mail shows times (i18n.format_when)
DUE = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
LOCALES = ("de", "en", "fr", "pt")
GREETING = {
    "en": "Hello {{ customer_name }},",
    "fr": "Bonjour {{ customer_name }},",
    "de": "Hallo {{ customer_name }},",
    "pt": "Olá {{ customer_name }},",
}


def shop(rt: Runtime, locale: str = "en") -> None:
    with rt.sessions.begin() as session:
        ctx = rt.context(NOW)
        vendors.add_vendor(session, ctx, STAFF, "acme", "sales@acme.example",
                           timezone="Europe/Berlin", locale=locale)
        orders.upsert_order(session, ctx, orders.parse_line({
            "receipt": "ABCD1234", "vendor": "acme", "sku": "ebook-1", "title": "Guide",
            "customer_email": "ann@example.org", "customer_name": "Ann Smith",
            "amount": "47.00", "purchased_at": "2026-11-10T10:00:00Z", "locale": "de"}))


def save(rt: Runtime, name: str, body: str) -> None:
    with rt.sessions.begin() as session:
        vendor_texts.save_template(session, rt.context(NOW), STAFF, "acme", name, body)


def sign(rt: Runtime, text: str | None) -> None:
    with rt.sessions.begin() as session:
        vendor_texts.set_signature(session, rt.context(NOW), STAFF, "acme", text)


def open_refund(rt: Runtime) -> int:
    with rt.sessions.begin() as session:
        return tickets.open_ticket(session, rt.context(NOW), "ABCD1234", TicketType.REFUND,
                                   CUSTOMER, comment="Please refund").number


def reply(rt: Runtime, number: int, text: str | None, actor: Actor = VENDOR,
          **kw: Any) -> dict[str, Any]:
    with rt.sessions.begin() as session:
        return ticket_view(tickets.act(session, rt.context(NOW), number, Action.REPLY, actor,
                                       comment=text, **kw))


@pytest.mark.parametrize("locale", LOCALES)
def test_a_template_renders_the_tickets_fields_in_the_vendors_locale(
        runtime: Runtime, locale: str) -> None:
    shop(runtime, locale)
    save(runtime, "refund-soon", GREETING[locale] + "\n{{ product }} ({{ receipt }}), "
         "#{{ ticket }}: {{ deadline }}.\n")
    number = open_refund(runtime)
    view = reply(runtime, number, "Anything else?", template="Refund-Soon")
    greeting = GREETING[locale].replace("{{ customer_name }}", "Ann Smith")
    deadline = i18n.format_when(DUE, locale, "Europe/Berlin")
    assert "Europe/Berlin" in deadline and "2026" in deadline
    assert deadline != i18n.format_when(DUE, "en" if locale != "en" else "de", "Europe/Berlin")
    assert view["messages"][-1]["text"] == (
        f"{greeting}\nGuide (ABCD1234), #{number}: {deadline}.\n\nAnything else?")


@pytest.mark.parametrize("locale", LOCALES)
def test_the_signature_goes_under_every_vendor_message_once(runtime: Runtime,
                                                            locale: str) -> None:
    shop(runtime, locale)
    sign(runtime, "-- \n" + GREETING[locale].replace("{{ customer_name }}", "{{ vendor }}")
         + "\nhttps://acme.example")
    number = open_refund(runtime)
    signature = GREETING[locale].replace("{{ customer_name }}", "acme") + (
        "\nhttps://acme.example")
    first = reply(runtime, number, "We will look at it.")["messages"][-1]["text"]
    assert first == f"We will look at it.\n\n-- \n{signature}"
    # the vendor's mail client put it there already (rewrapped): not again
    already = f"Done.\n\n{signature.replace(chr(10), ' ')}"
    assert reply(runtime, number, already)["messages"][-1]["text"] == already
    # with an action's comment too; never under the customer's
    closed = ticket_view_after(runtime, number, Action.ESCALATE, VENDOR, "Staff, please look")
    assert closed["messages"][-1]["text"].endswith(signature)
    assert reply(runtime, number, "Thanks", CUSTOMER)["messages"][-1]["text"] == "Thanks"


def ticket_view_after(rt: Runtime, number: int, action: Action, actor: Actor,
                      comment: str) -> dict[str, Any]:
    with rt.sessions.begin() as session:
        return ticket_view(tickets.act(session, rt.context(NOW), number, action, actor,
                                       comment=comment))


def test_no_signature_no_change(runtime: Runtime) -> None:
    shop(runtime)
    sign(runtime, "Acme")
    sign(runtime, None)
    number = open_refund(runtime)
    assert reply(runtime, number, "Hi")["messages"][-1]["text"] == "Hi"


@pytest.mark.parametrize(("body", "reason"), [
    ("Hello {{ customer_name }},\nyour order {{ order.secret }}", "line 2: unknown field 'order'"),
    ("Hi\n\n{{ ''.__class__ }}", "line 3: access to attribute '__class__' of 'str' object is "
     "unsafe"),
    ("{{ customer_name.__class__.__mro__[1].__subclasses__() }}", "line 1: access to attribute"),
    ("Hi {% if %}", "line 1: Expected an expression"),
    ("{{ ticket / 0 }}", "line 1: division by zero"),
    ("{{ 'spam ' * 100000000 }}", "line 1: repeating a text more than 1000 times"),
])
def test_a_template_that_would_fail_is_refused_when_saved(runtime: Runtime, body: str,
                                                          reason: str) -> None:
    shop(runtime)
    with pytest.raises(UserError) as refused:
        save(runtime, "bad", body)
    assert refused.value.code == "invalid_template"
    assert refused.value.message.startswith(f"template 'bad', {reason}")
    with pytest.raises(UserError, match=f"the signature, {reason.split(':')[0]}"):
        sign(runtime, body)
    with runtime.sessions() as session:
        assert session.execute(select(func.count()).select_from(ReplyTemplate)).scalar_one() == 0


def test_templates_are_listed_replaced_and_removed(runtime: Runtime) -> None:
    shop(runtime)
    save(runtime, "b", "B")
    save(runtime, "a", "A")
    save(runtime, "a", "A2")
    with runtime.sessions.begin() as session:
        assert [(t.name, t.body) for t in vendor_texts.list_templates(session, "acme")] == [
            ("a", "A2"), ("b", "B")]
        vendor_texts.remove_template(session, runtime.context(NOW), STAFF, "acme", "a")
    with runtime.sessions() as session, pytest.raises(NotFound):
        vendor_texts.find_template(session, "acme", "a")
    with pytest.raises(UserError, match="must be 1-64 lower-case letters"):
        save(runtime, "no spaces", "x")


def test_an_unknown_template_or_a_customers_template_changes_nothing(runtime: Runtime) -> None:
    shop(runtime)
    save(runtime, "thanks", "Thanks!")
    number = open_refund(runtime)
    with pytest.raises(NotFound, match="no reply template 'nope'; yours are: thanks"):
        reply(runtime, number, None, template="nope")
    with pytest.raises(UserError, match="reply templates are the vendor's"):
        reply(runtime, number, "x", CUSTOMER, template="thanks")
    with runtime.sessions() as session:
        assert len(tickets.find_ticket(session, number).messages) == 1


def test_a_vendor_with_a_template_and_no_text(runtime: Runtime) -> None:
    shop(runtime)
    save(runtime, "thanks", "Thanks, {{ customer_name }}!")
    number = open_refund(runtime)
    assert reply(runtime, number, None, template="thanks")["messages"][-1]["text"] == (
        "Thanks, Ann Smith!")
