"""A mail says what happened when it happened, however late the worker renders it (SPEC 2).

The worker is held back: several changes are written at earlier instants (`--at`) while no
mail goes out, then delivery runs and every mail, caught by a real SMTP sink, is compared
with what was true at its event.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from email.message import EmailMessage

import pytest
from sqlalchemy import select

from gateway.domain.facts import Action, Role, TicketType
from gateway.services import orders, tickets
from gateway.services.context import Actor
from gateway.services.deadlines import run_due
from gateway.services.runtime import Runtime
from outbound.deliver import Deliverer
from store.models import OutboxMail
from ticketgw.testing.runtime import START
from ticketgw.testing.smtp_sink import SmtpSink
from ticketgw.testing.story import CUSTOMER, RECEIPT, VENDOR, seed_order, text_part

CUSTOMER_ACTOR = Actor(Role.CUSTOMER, email=CUSTOMER, source="web")
VENDOR_ACTOR = Actor(Role.VENDOR, email=VENDOR, source="web")


def _deliver_everything(runtime: Runtime, sink: SmtpSink) -> list[EmailMessage]:
    """The held-back worker catches up: every pending row, oldest first, to the sink."""
    with runtime.sessions() as session:
        ids = list(session.execute(select(OutboxMail.id).order_by(OutboxMail.id)).scalars())
    deliverer = Deliverer(runtime)
    try:
        for outbox_id in ids:
            assert deliverer.deliver(outbox_id) == "sent"
    finally:
        deliverer.close()
    return [m.message for m in sink.wait_for(len(ids), timeout=30)]


def _to(mails: list[EmailMessage], address: str, event: str) -> list[EmailMessage]:
    return [m for m in mails if m["To"].addresses[0].addr_spec == address
            and m["X-Ticket-Event"] == event]


def test_a_late_worker_mails_each_change_as_it_was(make_relay_runtime: Callable[..., Runtime],
                                                   smtp_sink: SmtpSink) -> None:
    runtime = make_relay_runtime()
    seed_order(runtime, vendor_locale="en", customer_locale="en")
    steps: list[tuple[int, Actor, Action, str | None]] = [
        (4, CUSTOMER_ACTOR, Action.REFUND, None),  # the customer turns it into a refund
        (3, VENDOR_ACTOR, Action.PERCENT, "30"),  # the vendor offers 30 %
        (2, VENDOR_ACTOR, Action.TECHSUPPORT, None),  # and then back to tech support
        (1, CUSTOMER_ACTOR, Action.CLOSE, None),
    ]
    with runtime.sessions.begin() as session:  # the vendor opens a tech-support ticket
        number = tickets.open_ticket(session, runtime.context(START - timedelta(hours=5)),
                                     RECEIPT, TicketType.TECH_SUPPORT, VENDOR_ACTOR,
                                     comment="Does the download work for you now?").number
    for hours, actor, action, value in steps:
        with runtime.sessions.begin() as session:
            tickets.act(session, runtime.context(START - timedelta(hours=hours)), number,
                        action, actor, value=value)

    mails = _deliver_everything(runtime, smtp_sink)

    opened = text_part(_to(mails, CUSTOMER, "opened")[0])
    assert "Tech Support Request" in opened and "Refund Request" not in opened
    assert "Status: Open" in opened
    changed = _to(mails, CUSTOMER, "changed")
    assert [str(m["Subject"]) for m in changed] == [
        f"Ticket Changed - Refund Request [Ticket #{number}]",
        f"Ticket Changed - Refund Request [Ticket #{number}]",
        f"Ticket Changed - Tech Support Request [Ticket #{number}]",
    ]
    texts = [" ".join(text_part(m).split()) for m in changed]  # lines unwrapped
    assert all("Status: Open" in t and "Status: Closed" not in t for t in texts)
    assert "Tech Support Request → Refund Request" in texts[0]
    assert "It is now a refund request (Full refund)." in texts[0]
    assert "Full refund → Partial refund (percent)" in texts[1]
    assert "Refund amount: $14.10" in texts[1]
    assert "Refund Request → Tech Support Request" in texts[2]
    assert "It is now a tech support request." in texts[2]
    assert len(set(texts)) == 3  # each change reads as itself
    # what the reader could do then: the refund could still be turned back, not after
    assert "#techsupport" in text_part(_to(mails, VENDOR, "changed")[0])
    closed = text_part(_to(mails, CUSTOMER, "closed")[0])
    assert "Status: Closed" in closed


def _deliver_pending(runtime: Runtime, sink: SmtpSink) -> list[EmailMessage]:
    sink.clear()
    with runtime.sessions() as session:
        ids = list(session.execute(select(OutboxMail.id).where(OutboxMail.state == "pending")
                                   .order_by(OutboxMail.id)).scalars())
    deliverer = Deliverer(runtime)
    try:
        for outbox_id in ids:
            deliverer.deliver(outbox_id)
    finally:
        deliverer.close()
    return [m.message for m in sink.wait_for(len(ids), timeout=30)]


def test_an_inactivity_warning_gives_the_auto_close_date_of_its_moment(
        make_relay_runtime: Callable[..., Runtime], smtp_sink: SmtpSink) -> None:
    runtime = make_relay_runtime()
    seed_order(runtime, vendor_locale="en", customer_locale="en")
    with runtime.sessions.begin() as session:  # Thursday 10:00 in Berlin
        number = tickets.open_ticket(session, runtime.context(), RECEIPT,
                                     TicketType.TECH_SUPPORT, CUSTOMER_ACTOR,
                                     comment="The download fails.").number
    # 48 business hours later (Monday 10:00) the first warning; nobody writes
    monday = START + timedelta(days=4, minutes=1)
    run_due(runtime.sessions, lambda: runtime.context(monday), runtime.refunds)
    with runtime.sessions.begin() as session:  # the customer answers later that day
        tickets.act(session, runtime.context(monday + timedelta(hours=3)), number,
                    Action.REPLY, CUSTOMER_ACTOR, comment="Still waiting.")
    mails = _deliver_pending(runtime, smtp_sink)
    for address in (CUSTOMER, VENDOR):
        warning = " ".join(text_part(_to(mails, address, "inactivity_warning")[0]).split())
        # six business days after the customer's last word before the warning: Friday 10:00
        assert ("If nobody writes first, the ticket will be closed on Fri, Nov 27, 2026, "
                "10:00 AM (Europe/Berlin).") in warning


@pytest.mark.parametrize(("shipped", "customer_line", "vendor_line"), [
    (True, "If the goods reach you, please send them back to the vendor: write to "
           f"{VENDOR} for the return address",
     f"The customer was asked to send the goods back and to write to you ({VENDOR})"),
    (False, "The goods had not been shipped: they will not be sent, and there is nothing to "
            "return.", "Do not ship this order: it has been refunded."),
])
def test_a_processed_refund_of_physical_goods_says_what_to_do_with_them(
        make_relay_runtime: Callable[..., Runtime], smtp_sink: SmtpSink, shipped: bool,
        customer_line: str, vendor_line: str) -> None:
    runtime = make_relay_runtime()
    seed_order(runtime, vendor_locale="en", customer_locale="en")  # the vendor
    with runtime.sessions.begin() as session:
        line = orders.parse_line({
            "receipt": "BOX00001", "vendor": "acme", "sku": "box-1", "title": "Lamp",
            "kind": "physical", "recurring": False, "customer_email": CUSTOMER,
            "customer_name": "Ann Example", "quantity": 1, "amount": "80.00", "currency": "USD",
            "purchased_at": (START - timedelta(days=3)).isoformat(), "locale": "en",
            "shipped": shipped,
        })
        orders.upsert_order(session, runtime.context(), line)
        tickets.open_ticket(session, runtime.context(), "BOX00001", TicketType.REFUND,
                            CUSTOMER_ACTOR, reason="not_satisfied", comment="Broken on arrival.")
    run_due(runtime.sessions, lambda: runtime.context(START + timedelta(days=30)),
            runtime.refunds)
    mails = _deliver_pending(runtime, smtp_sink)
    assert customer_line in " ".join(text_part(_to(mails, CUSTOMER, "processed")[0]).split())
    assert vendor_line in " ".join(text_part(_to(mails, VENDOR, "processed")[0]).split())
