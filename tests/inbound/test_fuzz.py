"""Hypothesis: any bytes through parse and decide raise nothing, and intake never fails."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.domain.facts import Role
from inbound.commands import parse_commands
from inbound.intake import receive
from inbound.parse import parse_mail
from inbound.pipeline import decide, receipt_candidates
from inbound.rules.base import MailContext, OrderRef, TicketRef
from tests.inbound.conftest import CUSTOMER, DOMAIN, World

TICKET = TicketRef(1001, "open", CUSTOMER, frozenset({"v@acme.example"}))
BASE = MailContext(mail_domain=DOMAIN, staff_email=f"staff@{DOMAIN}", recipient_kind="support",
                   sender=CUSTOMER, envelope_from=CUSTOMER)
CONTEXTS = [
    BASE,
    replace(BASE, recipient_kind="reply", token_ticket=TICKET, token_party=Role.VENDOR),
    replace(BASE, recipient_kind="refunds", named_orders=(OrderRef("ABCD1234", CUSTOMER,
                                                                   frozenset()),)),
    replace(BASE, recipient_kind="cancel", envelope_from=""),
    replace(BASE, subject_number=1001, subject_ticket=TICKET, verified=True),
]
HEADERS = ["From", "Subject", "Auto-Submitted", "Precedence", "List-Id", "Content-Type",
           "In-Reply-To", "References", "Authentication-Results", "Message-ID", "Received",
           "Content-Transfer-Encoding", "X-Ticketgw-Loop"]

header_line = st.tuples(st.sampled_from(HEADERS), st.text(max_size=80)).map(
    lambda kv: f"{kv[0]}: {kv[1]}".encode("utf-8", "surrogateescape"))
mails = st.one_of(
    st.binary(max_size=2000),
    st.tuples(st.lists(header_line, max_size=12), st.binary(max_size=1000)).map(
        lambda hb: b"\r\n".join(hb[0]) + b"\r\n\r\n" + hb[1]),
)


@settings(max_examples=300, deadline=None)
@given(mails)
def test_parse_and_decide_never_raise(raw: bytes) -> None:
    mail = parse_mail(raw)
    receipt_candidates(mail)
    for ctx in CONTEXTS:
        rule, verdict = decide(mail, ctx)
        assert rule and verdict.terminal


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=400))
def test_commands_never_raise(text: str) -> None:
    parsed = parse_commands(text)
    assert len(parsed.commands) <= 10


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(mails, st.sampled_from(["support", "refunds", "cancel", "reply"]))
def test_intake_decides_every_mail(world: World, raw: bytes, local: str) -> None:
    recipient = (world.reply_address(1, Role.CUSTOMER) if local == "reply"
                 else f"{local}@{DOMAIN}")
    outcome = receive(world.runtime, raw, envelope_from=CUSTOMER, recipient=recipient,
                      rate=(10**6, 60))
    assert outcome.state != "failed", outcome
    assert outcome.reply[:1] in ("2", "5")
