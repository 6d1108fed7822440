"""A refused mail's notice is in its reader's language, from the service that refuses it to
the bytes the worker sends (SQLite and PostgreSQL, the real composer)."""

from __future__ import annotations

from email import message_from_bytes, policy

from sqlalchemy import select

from gateway.domain.facts import Action, Role
from gateway.services import by_mail, i18n, tickets
from gateway.services.by_mail import Refused
from gateway.services.context import NO_ORIGIN, Actor
from gateway.services.runtime import Runtime
from outbound.compose import Composer
from store.models import OutboxMail
from ticketgw.testing.story import CUSTOMER, VENDOR, open_refund, seed_order


def notice_text(rt: Runtime, to: str) -> tuple[str, object]:
    """The text part and the stored payload of the newest notice to `to`, as the worker
    renders it."""
    with rt.sessions() as session:
        row = session.execute(select(OutboxMail).where(
            OutboxMail.event == "notice", OutboxMail.recipient == to)
            .order_by(OutboxMail.id.desc()).limit(1)).scalar_one()
        raw = Composer(rt.settings, rt.tokens).compose(session, row, rt.clock.now()).raw
        payload = row.payload
    mail = message_from_bytes(raw, policy=policy.default)
    body = mail.get_body(("plain",))
    assert body is not None
    return " ".join(str(body.get_content()).split()), payload


def test_a_vendors_reply_to_a_closed_ticket_is_refused_in_german(runtime: Runtime) -> None:
    seed_order(runtime, vendor_locale="de", customer_locale="pt")
    number = open_refund(runtime)
    with runtime.sessions.begin() as session:
        tickets.act(session, runtime.context(), number, Action.CLOSE,
                    Actor(Role.CUSTOMER, CUSTOMER, source="web"))
    with runtime.sessions.begin() as session:
        refused = by_mail.reply(session, runtime.context(), number, None,
                                Actor(Role.VENDOR, VENDOR, source="email"), "Noch da?",
                                NO_ORIGIN)
    assert isinstance(refused, Refused)
    text, payload = notice_text(runtime, VENDOR)
    # the reason is kept as a catalogue sentence, and said in the vendor's language
    assert isinstance(payload, dict) and payload["refused"]["msgid"].startswith("ticket #%(n)s")
    assert (f"Ticket #{number} ist geschlossen; Ihre Antwort wurde nicht hinzugefügt. Der "
            "Kundenservice kann es bei Bedarf wieder öffnen.") in text
    assert "your reply was not added" not in text


def test_commands_a_customer_may_not_use_are_refused_in_portuguese(runtime: Runtime) -> None:
    seed_order(runtime, vendor_locale="de", customer_locale="pt")
    number = open_refund(runtime)
    with runtime.sessions.begin() as session:
        by_mail.act(session, runtime.context(), number,
                    Actor(Role.CUSTOMER, CUSTOMER, source="email", verified=True),
                    [(Action.ESCALATE, None)], "", NO_ORIGIN)
    text, _payload = notice_text(runtime, CUSTOMER)
    assert ("Somente o fornecedor pode escalar um tíquete para a equipe; responda no "
            "tíquete.") in text
    assert "only the vendor" not in text


def test_unknown_commands_are_explained_in_the_senders_language() -> None:
    from inbound.commands import describe_unknown

    said = i18n.say(describe_unknown(("#refnud",)), "fr")
    assert said.startswith("Ces lignes ne sont pas des commandes connues, rien n'a donc été "
                           "modifié : #refnud.")
    assert "#template NOM" in said
