"""The IMAP poller against a real Dovecot, on SQLite and PostgreSQL: take in, then move aside."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from imapclient import IMAPClient
from sqlalchemy import event, func, select
from sqlalchemy.exc import OperationalError

import inbound.imap as imap
import inbound.imap_client as imap_client
from gateway.domain.errors import ConfigError
from gateway.services.runtime import Runtime
from inbound.imap import poll_once, run_imap
from inbound.imap_client import (
    FAILED,
    FOLDERS,
    PROCESSED,
    REJECTED,
    Backoff,
    ImapAccount,
    parse_imap_url,
)
from store.models import ImapAttempt, ImapState, InboundMail, Message, OutboxMail, Ticket
from tests.inbound.conftest import (
    CUSTOMER,
    DOMAIN,
    RECEIPT,
    STRANGER,
    VENDOR_CS,
    World,
    make_mail,
)
from tests.inbound.test_forwards import OPENING, SAMPLES, forward_sample
from tests.support.dovecot import DovecotServer
from tests.support.services import wait_until

DATA = Path(__file__).resolve().parents[1] / "data"


def crlf(raw: bytes) -> bytes:
    return raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def mail(**kw: Any) -> bytes:
    kw.setdefault("subject", f"Help with order {RECEIPT}")
    return crlf(make_mail(**kw))


@pytest.fixture
def mailbox(dovecot: DovecotServer) -> DovecotServer:
    """The session's Dovecot with INBOX and our three folders, all empty."""
    with dovecot.client() as client:
        imap_client.ensure_folders(client)
    for folder in ("INBOX", *FOLDERS):
        dovecot.clear(folder)
    return dovecot


@pytest.fixture
def rt(world: World, mailbox: DovecotServer) -> Runtime:
    runtime = world.runtime
    runtime.settings = dataclasses.replace(runtime.settings, imap_url=mailbox.url)
    return runtime


@pytest.fixture
def client(mailbox: DovecotServer) -> Iterator[IMAPClient]:
    with mailbox.client() as connection:
        yield connection


pytestmark = pytest.mark.imap


def folder(server: DovecotServer, name: str) -> list[tuple[bytes, tuple[bytes, ...]]]:
    """(body, flags) of every mail in `name`, read without changing any flag."""
    with server.client() as connection:
        connection.select_folder(name, readonly=True)
        uids = connection.search(["NOT", "DELETED"])
        found = connection.fetch(uids, ["BODY.PEEK[]", "FLAGS"]) if uids else {}
        return [(bytes(found[u][b"BODY[]"]), tuple(found[u][b"FLAGS"])) for u in sorted(found)]


def bodies(server: DovecotServer, name: str) -> list[bytes]:
    return [body for body, _flags in folder(server, name)]


def count(runtime: Runtime, model: Any) -> int:
    with runtime.sessions() as session:
        return int(session.execute(select(func.count()).select_from(model)).scalar_one())


def state(runtime: Runtime) -> ImapState:
    with runtime.sessions() as session:
        row = session.execute(select(ImapState)).scalar_one()
        session.expunge(row)
        return row


def notices(runtime: Runtime) -> list[tuple[str, str | None, str, int | None]]:
    with runtime.sessions() as session:
        rows = session.execute(select(OutboxMail).where(OutboxMail.event == "notice")
                               .order_by(OutboxMail.id)).scalars().all()
        return [(r.recipient, r.notice_kind, r.party, r.ticket_id) for r in rows]


def fail_writes_of(runtime: Runtime, marker: str) -> Callable[[], None]:
    """Make the database refuse every statement that carries `marker` (a Message-ID), the way
    an outage would, so exactly that one mail fails; returns the function that ends it."""

    def refuse(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if marker in repr(parameters):
            raise OperationalError(statement, parameters, Exception("injected: database gone"))

    event.listen(runtime.engine, "before_cursor_execute", refuse)
    return lambda: event.remove(runtime.engine, "before_cursor_execute", refuse)


# --- configuration ---------------------------------------------------------------------


@pytest.mark.parametrize(("url", "expected"), [
    ("imap://tester:pw@127.0.0.1:1143/INBOX",
     ImapAccount("127.0.0.1", 1143, "tester", "pw", "INBOX", False)),
    ("imap://support%40shop.example:p%40ss%3Aw%2Frd@mail.example/",
     ImapAccount("mail.example", 143, "support@shop.example", "p@ss:w/rd", "INBOX", False)),
    ("imaps://u:p@mail.example/Support%20Mail",
     ImapAccount("mail.example", 993, "u", "p", "Support Mail", True)),
    ("imap://u:p@mail.example/INBOX;UIDVALIDITY=5",
     ImapAccount("mail.example", 143, "u", "p", "INBOX", False)),
])
def test_imap_url_is_decoded_with_default_ports(url: str, expected: ImapAccount) -> None:
    assert parse_imap_url(url) == expected


def test_bad_imap_url_is_refused_without_its_password() -> None:
    with pytest.raises(ConfigError, match="needs a user"):
        parse_imap_url("imap://mail.example/INBOX")
    with pytest.raises(ConfigError) as caught:
        parse_imap_url("pop3://u:secret@mail.example/")
    assert "secret" not in caught.value.message


def test_backoff_doubles_up_to_its_limit_and_resets() -> None:
    backoff = Backoff(first=1, limit=5)
    assert [backoff.next() for _ in range(5)] == [1, 2, 4, 5, 5]
    backoff.reset()
    assert backoff.next() == 1


# --- against Dovecot -------------------------------------------------------------------


def test_customer_mail_opens_a_ticket_then_moves_to_processed(
        rt: Runtime, mailbox: DovecotServer, client: IMAPClient) -> None:
    raw = mail()
    mailbox.append(raw)
    result = poll_once(rt, client)
    assert result.counts == {"processed": 1, "rejected": 0, "failed": 0, "retrying": 0}
    with rt.sessions() as session:
        ticket = session.execute(select(Ticket)).unique().scalar_one()
        assert (ticket.type, ticket.order.receipt) == ("tech_support", RECEIPT)
        row = session.execute(select(InboundMail)).scalar_one()
        assert (row.channel, row.recipient, row.state) == ("imap", f"support@{DOMAIN}",
                                                           "applied")
    assert bodies(mailbox, "INBOX") == []
    [(body, flags)] = folder(mailbox, PROCESSED)
    assert body == raw and b"\\Seen" not in flags  # fetched with BODY.PEEK[]
    assert state(rt).last_uid >= 1
    # nothing new: the next pass does nothing
    assert poll_once(rt, client).counts == {"processed": 0, "rejected": 0, "failed": 0,
                                            "retrying": 0}


def test_stranger_mail_is_rejected_with_one_request_not_processed_mail(
        rt: Runtime, mailbox: DovecotServer, client: IMAPClient) -> None:
    first, second = mail(sender=STRANGER), mail(sender=STRANGER, subject=f"Again {RECEIPT}")
    mailbox.append(first)
    mailbox.append(second)
    assert poll_once(rt, client).rejected == 2
    assert bodies(mailbox, REJECTED) == [first, second]
    assert bodies(mailbox, "INBOX") == []
    assert count(rt, Ticket) == 0
    # one explanation a day per address, naming no ticket (a stranger learns of none)
    assert notices(rt) == [(STRANGER, "request_not_processed", "customer", None)]


def test_legacy_request_without_an_order_gets_request_not_processed(
        rt: Runtime, mailbox: DovecotServer, client: IMAPClient) -> None:
    raw = mail(sender="nobody@example.net", to=f"refunds@{DOMAIN}", subject="refund please",
               body="I want my money back.")
    mailbox.append(raw)
    assert poll_once(rt, client).rejected == 1
    assert bodies(mailbox, REJECTED) == [raw]
    assert notices(rt) == [("nobody@example.net", "request_not_processed", "customer", None)]
    with rt.sessions() as session:
        row = session.execute(select(InboundMail)).scalar_one()
        assert (row.recipient, row.decision) == (f"refunds@{DOMAIN}", "rejected_no_order")


def test_delivered_to_names_the_address_the_mail_was_for(
        rt: Runtime, mailbox: DovecotServer, client: IMAPClient) -> None:
    # To: is a list the customer wrote to; the delivering server says it came via refunds@
    raw = mail(to="friends@example.org", subject=f"Refund {RECEIPT}",
               headers={"Delivered-To": f"refunds@{DOMAIN}", "Return-Path": f"<{CUSTOMER}>"})
    mailbox.append(raw)
    assert poll_once(rt, client).processed == 1
    with rt.sessions() as session:
        ticket = session.execute(select(Ticket)).unique().scalar_one()
        row = session.execute(select(InboundMail)).scalar_one()
    assert ticket.type == "refund"
    assert (row.recipient, row.envelope_from) == (f"refunds@{DOMAIN}", CUSTOMER)


def test_the_same_mail_twice_makes_one_ticket(
        rt: Runtime, mailbox: DovecotServer, client: IMAPClient) -> None:
    raw = mail()
    mailbox.append(raw)
    mailbox.append(raw)
    assert poll_once(rt, client).processed == 2
    assert count(rt, Ticket) == 1
    assert count(rt, Message) == 1
    assert bodies(mailbox, PROCESSED) == [raw, raw]


def test_a_failing_mail_is_retried_then_set_aside_while_the_next_is_processed(
        rt: Runtime, mailbox: DovecotServer, client: IMAPClient) -> None:
    bad = mail(message_id="<fault-1@example.org>")
    good = mail(subject=f"Another question on {RECEIPT}")
    mailbox.append(bad)
    mailbox.append(good)
    client.select_folder("INBOX")
    bad_uid, good_uid = sorted(client.search("ALL"))
    # Fault injected: the database refuses every write of the first mail (an outage that
    # hits that one mail), so receive() answers 451 for it and for nothing else.
    stop_failing = fail_writes_of(rt, "fault-1@example.org")
    try:
        first = poll_once(rt, client, max_tries=3)
        assert (first.processed, first.retrying) == (1, 1)
        assert bodies(mailbox, "INBOX") == [bad]
        assert bodies(mailbox, PROCESSED) == [good]
        # the failing mail holds the watermark below itself
        assert state(rt).last_uid < bad_uid
        assert poll_once(rt, client, max_tries=3).retrying == 1
        assert bodies(mailbox, "INBOX") == [bad]
        assert poll_once(rt, client, max_tries=3).failed == 1
    finally:
        stop_failing()
    assert bodies(mailbox, "INBOX") == []
    assert bodies(mailbox, FAILED) == [bad]
    assert count(rt, Ticket) == 1
    assert count(rt, ImapAttempt) == 0  # nothing left to count: the mail has left
    assert state(rt).last_uid == good_uid


def test_a_mail_that_stops_the_poller_is_set_aside_after_as_many_restarts(
        rt: Runtime, mailbox: DovecotServer, client: IMAPClient,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Tries are counted before each try and kept in the database: a mail whose intake
    kills the poller (here: SystemExit, as an out-of-memory kill would end it) is not taken
    in a fourth time after three restarts, and the mail behind it goes through."""
    from inbound import imap

    poison, good = mail(message_id="<poison-1@example.org>"), mail(
        subject=f"Another question on {RECEIPT}")
    mailbox.append(poison)
    mailbox.append(good)
    real = imap.receive
    taken: list[bytes] = []

    def dies_on_poison(runtime: Runtime, raw: bytes, **kwargs: Any) -> Any:
        taken.append(raw)
        if b"poison-1@" in raw:
            raise SystemExit("the poller's process ends")
        return real(runtime, raw, **kwargs)

    monkeypatch.setattr(imap, "receive", dies_on_poison)
    for _ in range(3):  # three runs of the poller, each ended by the same mail
        with pytest.raises(SystemExit):
            poll_once(rt, client, max_tries=3)
    result = poll_once(rt, client, max_tries=3)
    assert (result.failed, result.processed) == (1, 1)
    assert taken.count(poison) == 3
    assert bodies(mailbox, FAILED) == [poison]
    assert bodies(mailbox, PROCESSED) == [good]
    assert count(rt, ImapAttempt) == 0


def test_a_mail_leaves_the_mailbox_only_after_its_commit(
        rt: Runtime, mailbox: DovecotServer, client: IMAPClient,
        monkeypatch: pytest.MonkeyPatch) -> None:
    raw = mail(message_id="<commit-1@example.org>")
    mailbox.append(raw)
    from inbound.intake import receive as real_receive

    # Fault injected: every COMMIT inside receive() fails, as when the database dies at the
    # last moment. receive() then answers 451, and the mail must still be in the mailbox,
    # unread.
    def refuse_commit(_conn: Any) -> None:
        raise OperationalError("COMMIT", None, Exception("injected: commit lost"))

    def commit_lost(*args: Any, **kw: Any) -> Any:
        event.listen(rt.engine, "commit", refuse_commit)
        try:
            return real_receive(*args, **kw)
        finally:
            event.remove(rt.engine, "commit", refuse_commit)

    monkeypatch.setattr(imap, "receive", commit_lost)
    assert poll_once(rt, client).retrying == 1
    [(body, flags)] = folder(mailbox, "INBOX")
    assert body == raw and b"\\Seen" not in flags and b"\\Deleted" not in flags
    assert count(rt, Ticket) == 0 and count(rt, InboundMail) == 0

    # With the database back: at the moment receive() returns, its rows are committed (a
    # fresh session sees them) and the mail is still in the mailbox; it moves afterwards.
    seen_at_return: list[tuple[int, list[bytes]]] = []

    def observed(*args: Any, **kw: Any) -> Any:
        outcome = real_receive(*args, **kw)
        seen_at_return.append((count(rt, Ticket), bodies(mailbox, "INBOX")))
        return outcome

    monkeypatch.setattr(imap, "receive", observed)
    assert poll_once(rt, client).processed == 1
    assert seen_at_return == [(1, [raw])]
    assert bodies(mailbox, "INBOX") == [] and bodies(mailbox, PROCESSED) == [raw]


def test_a_new_uidvalidity_rescans_the_mailbox_without_duplicates(
        rt: Runtime, mailbox: DovecotServer, client: IMAPClient) -> None:
    old = mail()
    mailbox.append(old)
    assert poll_once(rt, client).processed == 1
    # As if the mailbox had been recreated: the stored UIDVALIDITY no longer matches, and
    # the old watermark lies above every UID (trusting it would skip every mail).
    with rt.sessions.begin() as session:
        row = session.execute(select(ImapState)).scalar_one()
        row.uidvalidity, row.last_uid = row.uidvalidity + 1000, 10**9
    new = mail(subject=f"Still broken, order {RECEIPT}")
    mailbox.append(old)  # restored from a backup into the new mailbox
    mailbox.append(new)
    result = poll_once(rt, client)
    assert result.uidvalidity_changed and result.processed == 2
    assert count(rt, Ticket) == 1
    assert count(rt, Message) == 2  # the first mail once, the new one threaded
    assert bodies(mailbox, PROCESSED) == [old, old, new]
    assert state(rt).last_uid < 10**9


def test_without_move_the_mail_is_copied_and_expunged(
        rt: Runtime, mailbox: DovecotServer, client: IMAPClient,
        monkeypatch: pytest.MonkeyPatch) -> None:
    # Dovecot offers MOVE; hide it to exercise the COPY + \Deleted + UID EXPUNGE path that
    # servers without RFC 6851 need.
    offered = client.has_capability
    monkeypatch.setattr(client, "has_capability", lambda name: name.upper() != "MOVE"
                        and offered(name))
    raw = mail()
    mailbox.append(raw)
    assert poll_once(rt, client).processed == 1
    with mailbox.client() as other:
        other.select_folder("INBOX", readonly=True)
        assert other.search("ALL") == []  # expunged, not only flagged
    assert bodies(mailbox, PROCESSED) == [raw]


def test_the_role_loop_takes_mail_as_it_arrives_and_stops_on_request(
        rt: Runtime, mailbox: DovecotServer) -> None:
    stop = threading.Event()
    thread = threading.Thread(target=run_imap, args=(rt, stop), daemon=True)
    thread.start()
    try:
        # after the first pass (its state is written), so the mail arrives while the loop
        # waits in IDLE or is about to
        wait_until(lambda: count(rt, ImapState), message="the poller never polled")
        raw = mail()
        mailbox.append(raw)
        wait_until(lambda: bodies(mailbox, PROCESSED) == [raw], timeout=20,
                   message="the poller did not take the mail in")
        assert count(rt, Ticket) == 1
    finally:
        stop.set()
        thread.join(15)
    assert not thread.is_alive()


def test_the_role_loop_survives_an_unreachable_server(rt: Runtime,
                                                      mailbox: DovecotServer) -> None:
    from tests.support.services import free_port

    account = parse_imap_url(mailbox.url)
    rt.settings = dataclasses.replace(
        rt.settings, imap_url=f"imap://{account.user}:{account.password}@127.0.0.1:"
        f"{free_port()}/INBOX")
    attempts: list[float] = []

    class Counting(Backoff):
        def next(self) -> float:
            attempts.append(0.0)
            return 0.01

    stop = threading.Event()
    thread = threading.Thread(target=run_imap, args=(rt, stop),
                              kwargs={"backoff": Counting()}, daemon=True)
    thread.start()
    try:
        wait_until(lambda: len(attempts) >= 3, message="the poller did not try again")
    finally:
        stop.set()
        thread.join(15)
    assert not thread.is_alive()


def test_mail_announced_before_idle_is_not_left_waiting(mailbox: DovecotServer,
                                                        client: IMAPClient) -> None:
    # A mail that arrives during a pass is announced (EXISTS) in answer to some command of
    # that pass; IDLE never announces it again, so waiting must look for it first.
    client.select_folder("INBOX")
    seen = max(client.search(["NOT", "DELETED"]) or [0])
    mailbox.append(mail())
    client.noop()  # takes the EXISTS announcement, as the pass's last command would
    stop, done = threading.Event(), threading.Event()

    def wait() -> None:
        imap_client.wait_for_mail(client, stop, seen_uid=seen, idle_seconds=60)
        done.set()

    thread = threading.Thread(target=wait, daemon=True)
    thread.start()
    try:
        wait_until(done.is_set, timeout=5, message="waited in IDLE for an announced mail")
    finally:
        stop.set()
        thread.join(5)


def test_a_rate_limited_mail_waits_in_the_mailbox_without_counting_as_a_failure(
        rt: Runtime, mailbox: DovecotServer, client: IMAPClient,
        monkeypatch: pytest.MonkeyPatch) -> None:
    import inbound.intake as intake

    monkeypatch.setattr(intake, "RATE_LIMIT", (1, 600))  # one mail per sender per 10 minutes
    first, second = mail(), mail(subject=f"And another thing about {RECEIPT}")
    mailbox.append(first)
    mailbox.append(second)
    for _ in range(3):
        result = poll_once(rt, client, max_tries=1)
        assert (result.failed, bodies(mailbox, "INBOX")) == (0, [second])
    assert rt.clock.advance(seconds=601)  # type: ignore[attr-defined]
    assert poll_once(rt, client, max_tries=1).processed == 1
    assert bodies(mailbox, PROCESSED) == [first, second]
    assert notices(rt) == []


# --- forwarded mail ----------------------------------------------------------------------


def test_forwards_are_filed_under_the_customer_and_taken_once(
        rt: Runtime, mailbox: DovecotServer, client: IMAPClient) -> None:
    # Gmail, Outlook and Apple Mail inline in four languages, forward as attachment; the
    # Outlook one delivered twice
    raws = [crlf(forward_sample(name)) for name in SAMPLES]
    again = raws[SAMPLES.index("forward_outlook_en.eml")]
    for raw in (*raws, again):
        mailbox.append(raw)
    assert poll_once(rt, client).counts == {"processed": len(raws) + 1, "rejected": 0,
                                            "failed": 0, "retrying": 0}
    assert bodies(mailbox, PROCESSED) == [*raws, again] and bodies(mailbox, "INBOX") == []
    with rt.sessions() as session:
        [ticket] = session.execute(select(Ticket)).unique().scalars().all()
        assert (ticket.type, ticket.order.receipt) == ("tech_support", RECEIPT)
        filed = [(m.author_role, m.author_email, m.forwarded_by) for m in ticket.messages]
        texts = [m.text for m in ticket.messages]
    assert filed == [("customer", CUSTOMER, VENDOR_CS)] * len(raws)
    assert all(text.startswith(OPENING) and "Forwarding" not in text for text in texts)
    assert poll_once(rt, client).processed == 0


def test_a_strangers_forward_is_set_aside_with_one_explanation(
        rt: Runtime, mailbox: DovecotServer, client: IMAPClient) -> None:
    raw = crlf(forward_sample("forward_gmail_de.eml", STRANGER))
    mailbox.append(raw)
    assert poll_once(rt, client).rejected == 1
    assert bodies(mailbox, REJECTED) == [raw]
    assert count(rt, Ticket) == 0 and count(rt, Message) == 0
    assert notices(rt) == [(STRANGER, "request_not_processed", "customer", None)]


# --- Apple Mail's inline picture --------------------------------------------------------


def test_an_apple_mail_picture_arrives_whole_through_imap(
        rt: Runtime, mailbox: DovecotServer, client: IMAPClient) -> None:
    """The picture part (no Content-Disposition) is kept with its Content-ID, and the HTML
    still names it by `cid:`, as through SMTP (tests/web/test_attachment_links.py)."""
    raw = crlf((DATA / "apple_inline_image_en.eml").read_bytes())
    mailbox.append(raw)
    assert poll_once(rt, client).processed == 1
    with rt.sessions() as session:
        [message] = session.execute(select(Message)).scalars().all()
        pictures = [(a.content_type, a.content_id, a.size) for a in message.attachments]
        html = message.html or ""
    assert pictures == [("image/png", "7A6B5C4D-3E2F-4A1B-9C8D-7E6F5A4B3C2D", pictures[0][2])]
    assert pictures[0][2] > 0
    assert 'src="cid:7A6B5C4D-3E2F-4A1B-9C8D-7E6F5A4B3C2D"' in html
