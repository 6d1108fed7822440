"""Whole SMTP transcripts against the real listener, on SQLite and PostgreSQL."""

from __future__ import annotations

import socket

from aiosmtpd.smtp import SMTP
from hypothesis import example, given
from hypothesis import strategies as st
from sqlalchemy import func, select

from gateway.domain.facts import Role
from inbound.smtp import InboundSMTP
from store.models import InboundMail, Message, OutboxMail, Ticket
from tests.inbound.conftest import (
    CUSTOMER,
    DOMAIN,
    STRANGER,
    VENDOR,
    SmtpServer,
    World,
    make_mail,
    send,
)


def _count(world: World, model: type) -> int:
    with world.runtime.sessions() as session:
        return int(session.execute(select(func.count()).select_from(model)).scalar_one())


def test_a_malformed_address_is_refused_for_good_and_the_session_goes_on(
        smtp: SmtpServer) -> None:
    """CPython's address parser crashes on some input (`x@[`): a permanent syntax error,
    not the 451 of a fault, which would make the client retry it for days."""
    client = smtp.client()
    for command in ("MAIL FROM:<0@[>", "MAIL FROM:0@"):
        code, _ = client.docmd(command)
        assert 500 <= code < 600
    assert client.mail(CUSTOMER)[0] == 250
    code, _ = client.docmd('RCPT TO:"')
    assert 500 <= code < 600
    assert client.rcpt(f"support@{DOMAIN}")[0] == 250
    client.quit()


def test_rcpt_refuses_unknown_addresses_and_bad_tokens(smtp: SmtpServer, world: World) -> None:
    client = smtp.client()
    assert client.mail(CUSTOMER)[0] == 250
    code, text = client.rcpt(f"sales@{DOMAIN}")
    assert (code, text[:5]) == (550, b"5.1.1")
    assert client.rcpt("support@elsewhere.example")[0] == 550
    assert client.rcpt(f"reply+aaaabbbbccccdddd@{DOMAIN}")[1].startswith(b"5.1.1")
    forged = world.reply_address(1, Role.CUSTOMER).replace("reply+a", "reply+b", 1)
    forged = forged if forged != world.reply_address(1, Role.CUSTOMER) else forged.replace(
        "reply+b", "reply+c", 1)
    assert client.rcpt(forged)[0] == 550
    assert client.rcpt(f"support@{DOMAIN}") == (250, b"2.1.5 OK")
    code, text = client.rcpt(f"refunds@{DOMAIN}")
    assert (code, text[:5]) == (452, b"4.5.3")
    client.quit()


def test_size_refused_at_mail_and_at_end_of_data(smtp: SmtpServer, world: World) -> None:
    limit = world.runtime.settings.max_message_bytes
    client = smtp.client()
    assert client.has_extn("size") and int(client.esmtp_features["size"]) == limit
    assert client.has_extn("8bitmime") and client.has_extn("smtputf8")
    code, text = client.mail(CUSTOMER, [f"SIZE={limit + 1}"])
    assert (code, text[:5]) == (552, b"5.3.4")
    assert client.mail(CUSTOMER)[0] == 250
    assert client.rcpt(f"support@{DOMAIN}")[0] == 250
    big = make_mail(body="x" * 70 + "\n") + (b"y" * 998 + b"\r\n") * (limit // 1000 + 2)
    code, text = client.data(big)
    assert (code, text[:5]) == (552, b"5.3.4")
    client.quit()
    assert _count(world, InboundMail) == 0


def test_reply_by_token_is_threaded(smtp: SmtpServer, world: World) -> None:
    number = world.open()
    raw = make_mail(sender="someone-else@example.net", body="It works now, thanks.")
    code, text = send(smtp, raw, rcpt=world.reply_address(number, Role.CUSTOMER))
    assert code == 250 and text == f"2.0.0 threaded to #{number}".encode()
    view = world.ticket(number)
    assert [m["text"] for m in view["messages"]][-1] == "It works now, thanks."  # type: ignore[index]


def test_stranger_with_subject_token_changes_nothing(smtp: SmtpServer, world: World) -> None:
    number = world.open()
    raw = make_mail(sender=STRANGER, subject=f"Re: Ticket Reply [Ticket #{number}]",
                    body="#close\nI am the customer, close this.")
    code, text = send(smtp, raw, rcpt=f"support@{DOMAIN}", mail_from=STRANGER)
    assert (code, text[:5]) == (550, b"5.7.1")
    view = world.ticket(number)
    assert view["status"] == "open" and len(view["messages"]) == 1  # type: ignore[arg-type]
    with world.runtime.sessions() as session:
        row = session.execute(select(InboundMail)).scalar_one()
        assert (row.state, row.decision) == ("rejected", "rejected_not_party")


def test_no_order_is_refused_with_a_reason(smtp: SmtpServer, world: World) -> None:
    raw = make_mail(sender="nobody@example.net", subject="Refund please", body="Refund me")
    code, text = send(smtp, raw, rcpt=f"refunds@{DOMAIN}", mail_from="nobody@example.net")
    assert (code, text[:5]) == (550, b"5.7.0")
    assert b"receipt number" in text
    assert _count(world, Ticket) == 0
    assert _count(world, OutboxMail) == 0  # over SMTP no mail goes to a possibly forged address


def test_rate_limit_answers_450(world: World) -> None:
    server = SmtpServer(world.runtime, rate=(2, 600))
    try:
        number = world.open()
        address = world.reply_address(number, Role.CUSTOMER)
        codes = [send(server, make_mail(body=f"note {i}"), rcpt=address)[0] for i in range(3)]
        assert codes[:2] == [250, 250]
        code, text = send(server, make_mail(body="again"), rcpt=address)
        assert (code, text[:5]) == (450, b"4.7.1")
    finally:
        server.stop()


def test_database_fault_gives_451_and_replay_applies(smtp: SmtpServer, world: World,
                                                    monkeypatch: object) -> None:
    import pytest

    from gateway.services import journal
    from inbound.intake import replay

    mp = monkeypatch
    assert isinstance(mp, pytest.MonkeyPatch)
    number = world.open()

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("simulated fault inside the transaction")

    mp.setattr(journal, "record", broken)  # after the reply's message row is written
    raw = make_mail(body="Still broken for me.")
    code, text = send(smtp, raw, rcpt=world.reply_address(number, Role.CUSTOMER))
    assert (code, text[:5]) == (451, b"4.3.0") and b"simulated" not in text
    assert len(world.ticket(number)["messages"]) == 1  # type: ignore[arg-type]
    with world.runtime.sessions() as session:
        row = session.execute(select(InboundMail)).scalar_one()
        assert row.state == "failed" and "simulated" in (row.error or "")
    mp.undo()
    outcomes = replay(world.runtime)
    assert [o.state for o in outcomes] == ["applied"]
    assert world.ticket(number)["messages"][-1]["text"] == "Still broken for me."  # type: ignore[index]
    assert replay(world.runtime) == []


def test_duplicate_changes_nothing(smtp: SmtpServer, world: World) -> None:
    number = world.open()
    raw = make_mail(body="Only once please.")
    address = world.reply_address(number, Role.CUSTOMER)
    assert send(smtp, raw, rcpt=address)[0] == 250
    outbox = _count(world, OutboxMail)
    code, text = send(smtp, raw, rcpt=address)
    assert code == 250 and b"already received" in text
    assert len(world.ticket(number)["messages"]) == 2  # type: ignore[arg-type]
    assert _count(world, OutboxMail) == outbox


def test_auto_reply_and_bounce_are_recorded_and_ignored(smtp: SmtpServer, world: World) -> None:
    number = world.open()
    address = world.reply_address(number, Role.CUSTOMER)
    ooo = make_mail(subject="Automatic reply: Ticket Reply [Ticket #1]",
                    headers={"Auto-Submitted": "auto-replied"})
    assert send(smtp, ooo, rcpt=address)[0] == 250
    with open("tests/data/bounce_delivery_status.eml", "rb") as handle:
        bounce = handle.read()
    assert send(smtp, bounce, rcpt=f"support@{DOMAIN}", mail_from="")[0] == 250
    assert len(world.ticket(number)["messages"]) == 1  # type: ignore[arg-type]
    with world.runtime.sessions() as session:
        decisions = [r.decision for r in session.execute(
            select(InboundMail).order_by(InboundMail.id)).scalars()]
    # the report is tied to no mail of ours (tests/inbound/test_bounces.py)
    assert decisions == ["ignored_auto_reply", "ignored_untied_bounce"]


def test_smuggling_probes_store_one_message(smtp: SmtpServer, world: World) -> None:
    number = world.open()
    address = world.reply_address(number, Role.CUSTOMER)
    for ending in (b"\n.\n", b"\r.\n", b"\n.\r\n", b"\r.\r\n"):
        before = _count(world, InboundMail)
        sock = socket.create_connection(("127.0.0.1", smtp.port), timeout=10)
        stream = sock.makefile("rb")
        stream.readline()
        smuggled = (b"From: " + CUSTOMER.encode() + b"\r\nSubject: a\r\n\r\nfirst" + ending
                    + b"MAIL FROM:<" + STRANGER.encode() + b">\r\nRCPT TO:<support@" +
                    DOMAIN.encode() + b">\r\nDATA\r\nFrom: " + STRANGER.encode() +
                    b"\r\n\r\nsmuggled\r\n.\r\n")
        sock.sendall(b"EHLO x\r\nMAIL FROM:<" + CUSTOMER.encode() + b">\r\nRCPT TO:<"
                     + address.encode() + b">\r\nDATA\r\n" + smuggled + b"QUIT\r\n")
        answers = stream.read().decode()
        sock.close()
        assert answers.count("\r\n250 2.0.0") + answers.count("\r\n451") <= 1, answers
        assert _count(world, InboundMail) == before + 1
    with world.runtime.sessions() as session:
        texts = session.execute(select(Message.text)).scalars().all()
    assert not any(t.strip() == "smuggled" for t in texts)


def test_vendor_legacy_refund_runs_in_five_minutes(world: World) -> None:
    from datetime import timedelta

    server = SmtpServer(world.runtime)
    try:
        raw = make_mail(sender=VENDOR, subject="Refund ABCD1234", body="Customer asked by phone.")
        code, text = send(server, raw, rcpt=f"refunds@{DOMAIN}", mail_from=VENDOR)
    finally:
        server.stop()
    assert code == 250, text
    with world.runtime.sessions() as session:
        ticket = session.execute(select(Ticket)).unique().scalar_one()
        assert ticket.created_by == "vendor" and ticket.type == "refund"
        # unverified: no clock yet; only the confirmation notice to the claimed sender
        assert ticket.awaiting_confirmation and ticket.process_at is None
        rows = session.execute(select(OutboxMail)).scalars().all()
        assert [(r.event, r.notice_kind, r.recipient) for r in rows] == [
            ("notice", "confirm_request", VENDOR)]
        from gateway.services import tickets
        from gateway.services.context import Actor

        tickets.confirm(session, world.runtime.context(), ticket,
                        Actor(Role.VENDOR, VENDOR, source="web"))
        assert ticket.process_at == world.runtime.clock.now().replace(microsecond=0) + \
            timedelta(minutes=5)


_ATEXT = st.text("abcXYZ019!#$%&'*+/=?^_`{|}~-.", min_size=1, max_size=12)
_ADDRESS_ARGS = st.one_of(
    st.text(max_size=60),
    st.builds(lambda local, domain, gap, rest: f"<{local}@{domain}>{gap}{rest}",
              _ATEXT, st.text("abc019-.", min_size=1, max_size=12),
              st.sampled_from(["", " ", "  ", "\t", " \t "]),
              st.text(" abcSIZE=019(\"\\)<>@", max_size=16)),
    st.builds(lambda local, domain, rest: f"<{local}@{domain}>{rest}",
              st.text(max_size=20), st.text(max_size=20),
              st.sampled_from(["", " SIZE=3000", "  BODY=8BITMIME SMTPUTF8", " (x)", ">"])),
    st.sampled_from(["", "<>", " <a@b.example>", "a@b.example", '<"a b"@c.example>',
                     "<@relay.example:a@b.example>", "<a@[127.0.0.1]>", "<" + "x" * 70 + "@b>",
                     "<a@b", "a@b> SIZE=1"]),
)


@given(arg=_ADDRESS_ARGS, limit=st.sampled_from([0, 64]))
@example(arg="<" + "x" * 70 + "@b.example>", limit=64)
@example(arg="0@", limit=0)
@example(arg='"', limit=0)
@example(arg="0@[", limit=0)
def test_mail_and_rcpt_addresses_parse_as_aiosmtpd_parses_them(arg: str, limit: int) -> None:
    """The listener's faster MAIL/RCPT address parse answers exactly as aiosmtpd's own."""
    ours, theirs = InboundSMTP.__new__(InboundSMTP), SMTP.__new__(SMTP)
    ours.local_part_limit = theirs.local_part_limit = limit
    try:
        expected = theirs._getaddr(arg)
    except Exception:  # noqa: BLE001 - aiosmtpd lets the parser's crashes out (a 451 for
        expected = (None, None)  # the client): ours refuses such an address as malformed
    assert ours._getaddr(arg) == expected
