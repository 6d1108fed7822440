"""A reply written from a ticket's row writes exactly what `tickets.act` writes for it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select

from gateway.domain.errors import Forbidden, UserError
from gateway.domain.facts import Action, Role, TicketType
from gateway.services import orders, ticket_rows, tickets
from gateway.services.context import NO_ORIGIN, Actor, MailOrigin, StoredAttachment
from gateway.services.runtime import Runtime
from store.models import OutboxMail
from tests.gateway.test_services import (
    BERLIN_THU_10,
    CUSTOMER,
    VENDOR,
    act,
    open_,
    order_line,
    setup_shop,
)

REPLIED = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


def _written(rt: Runtime, number: int = 1001) -> dict[str, Any]:
    """Everything a reply leaves on a ticket, without ids and the instants of recording."""
    with rt.sessions() as session:
        ticket = tickets.find_ticket(session, number)
        return {
            "clock": (ticket.last_activity_at, ticket.last_activity_side, ticket.warnings_sent,
                      ticket.due_at, ticket.due_kind, ticket.status),
            "messages": [(m.author_role, m.author_email, m.text, m.original, m.source,
                          m.message_id, m.created_at, [(a.filename, a.size) for a in
                                                       m.attachments])
                         for m in ticket.messages],
            "events": [(e.kind, e.actor_role, e.actor_email, e.at) for e in ticket.events],
            "outbox": [(o.event, o.party, o.recipient, o.locale, o.event_id is not None,
                        o.upto_message_id == max(m.id for m in ticket.messages))
                       for o in session.execute(select(OutboxMail).where(
                           OutboxMail.ticket_id == ticket.id).order_by(OutboxMail.id))
                       .scalars()],
        }


def _row_reply(rt: Runtime, actor: Actor, text: str, number: int = 1001,
               origin: MailOrigin = NO_ORIGIN) -> None:
    with rt.sessions.begin() as session:
        row = ticket_rows.load_row(session, number)
        assert row is not None and ticket_rows.can_reply(row)
        ticket_rows.reply(session, rt.context(REPLIED), row, actor, text, origin)


@pytest.mark.parametrize("actor", [CUSTOMER, VENDOR, Actor(VENDOR.role, source="web")],
                         ids=["customer", "vendor", "vendor-without-address"])
def test_a_reply_from_the_row_writes_what_act_writes(runtime: Runtime, actor: Actor) -> None:
    setup_shop(runtime)
    with runtime.sessions.begin() as session:  # a second order of the same customer
        orders.upsert_order(session, runtime.context(), orders.parse_line(
            order_line(receipt="EFGH5678")))
    open_(runtime, BERLIN_THU_10, TicketType.TECH_SUPPORT, comment="cannot download")
    open_(runtime, BERLIN_THU_10, TicketType.TECH_SUPPORT, receipt="EFGH5678",
          comment="cannot download")
    origin = MailOrigin(message_id="<r1@example.org>", original="full text\n> quoted",
                        attachments=(StoredAttachment("log.txt", "text/plain", 3, b"abc",
                                                         "f" * 32),))
    act(runtime, 1001, Action.REPLY, actor, REPLIED, comment="try again", origin=origin)
    _row_reply(runtime, actor, "try again", 1002, origin)
    assert _written(runtime, 1002) == _written(runtime, 1001)
    assert _written(runtime, 1002)["clock"][:3] == (
        REPLIED, "vendor" if actor.role is VENDOR.role else "customer", 0)


def test_a_reply_from_the_row_is_refused_as_act_refuses_it(runtime: Runtime) -> None:
    setup_shop(runtime)
    open_(runtime, BERLIN_THU_10, TicketType.TECH_SUPPORT, comment="cannot download")
    before = _written(runtime)
    with pytest.raises(UserError, match="needs some text"):
        _row_reply(runtime, CUSTOMER, "  ")
    system = Actor(Role.SYSTEM, source="system")
    with pytest.raises(Forbidden) as by_row:
        _row_reply(runtime, system, "try again")
    with pytest.raises(Forbidden) as by_act:
        act(runtime, 1001, Action.REPLY, system, REPLIED, comment="try again")
    assert by_row.value.message == by_act.value.message
    after = _written(runtime)
    assert after["messages"] == before["messages"] and after["outbox"] == before["outbox"]


def test_a_loaded_ticket_shows_a_reply_written_from_the_row(runtime: Runtime) -> None:
    setup_shop(runtime)
    open_(runtime, BERLIN_THU_10, TicketType.TECH_SUPPORT, comment="cannot download")
    with runtime.sessions.begin() as session:
        loaded = tickets.find_ticket(session, 1001)
        assert len(loaded.messages) == 1 and len(loaded.events) == 1
        row = ticket_rows.load_row(session, 1001)
        assert row is not None
        ticket_rows.reply(session, runtime.context(REPLIED), row, VENDOR, "try again")
        assert (loaded.last_activity_at, loaded.last_activity_side) == (REPLIED, "vendor")
        assert [m.text for m in loaded.messages] == ["cannot download", "try again"]
        assert [e.kind for e in loaded.events][-1] == "reply"
        assert not session.dirty


def test_only_open_tickets_without_bills_take_the_row_path(runtime: Runtime) -> None:
    setup_shop(runtime)
    open_(runtime, BERLIN_THU_10, TicketType.TECH_SUPPORT, comment="cannot download")
    with runtime.sessions() as session:
        row = ticket_rows.load_row(session, 1001)
        assert row is not None and ticket_rows.can_reply(row)
        assert ticket_rows.load_row(session, 4242) is None
    act(runtime, 1001, Action.CLOSE, CUSTOMER, REPLIED)
    with runtime.sessions() as session:
        row = ticket_rows.load_row(session, 1001)
        assert row is not None and not ticket_rows.can_reply(row)
        with pytest.raises(ValueError, match="tickets.act"):
            ticket_rows.reply(session, runtime.context(REPLIED), row, CUSTOMER, "again")
