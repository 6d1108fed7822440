"""`ticketgw imap` SIGKILLed between a mail's commit and its move (the network to Dovecot is
cut right then, so the kill lands there), and the mailbox recreated with a new UIDVALIDITY
holding restored copies, unprocessed mail and new mail: nothing missed, nothing twice."""

from __future__ import annotations

import random
import time
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from gateway.domain.facts import Role, TicketType
from inbound.imap_client import FAILED, FOLDERS, PROCESSED, REJECTED
from store.models import ImapAttempt, InboundMail
from tests.inbound.conftest import RECEIPT, crlf, make_mail, seed
from tests.reliability.load import Count, Mail, stored_copies
from tests.reliability.proxy import PausableProxy
from tests.reliability.servers import RoleProcess, elapsed
from tests.support.dovecot import DovecotServer
from tests.support.services import wait_until
from ticketgw.testing.runtime import make_runtime

pytestmark = pytest.mark.imap

WATCHED = "Support"  # not INBOX: only a folder of our own can be deleted and made anew
FIRST, NEW, RESTORED = 40, 10, 5  # mails before the new UIDVALIDITY, after it, restored copies
KILLS = 4


def _mails(prefix: str, count: int, rcpt: str) -> list[Mail]:
    mails = []
    for i in range(count):
        message_id, sender = f"{prefix}-{i}@imap.example", f"imap.{prefix}.{i}@example.org"
        raw = crlf(make_mail(sender=sender, to=rcpt, body=f"IMAP note {i}.",
                             message_id=f"<{message_id}>"))
        mails.append(Mail(message_id, sender, rcpt, raw))
    return mails


def _in(server: DovecotServer, folder: str) -> list[bytes]:
    with server.client() as client:
        client.select_folder(folder, readonly=True)
        uids = client.search(["NOT", "DELETED"])
        found = client.fetch(uids, ["BODY.PEEK[]"]) if uids else {}
        return [bytes(found[u][b"BODY[]"]) for u in sorted(found)]


def _count_in(server: DovecotServer, folder: str) -> int:
    with server.client() as client:
        client.select_folder(folder, readonly=True)
        return len(client.search(["NOT", "DELETED"]))


def _committed(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(InboundMail)
                                .where(InboundMail.state == "applied")).scalar_one())


def _newest(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.coalesce(func.max(InboundMail.id), 0))).scalar_one())


def _committed_and_still_there(engine: Engine, server: DovecotServer, after: int,
                               by_id: dict[str, bytes]) -> bool:
    """A mail committed after inbound row `after` is still in the watched mailbox."""
    with engine.connect() as conn:
        ids = conn.execute(select(InboundMail.message_id).where(
            InboundMail.id > after, InboundMail.state.in_(("applied", "ignored")))).scalars()
        raws = {by_id[i] for i in ids if i in by_id}
    return bool(raws) and any(raw in raws for raw in _in(server, WATCHED))


def _fresh_folders(server: DovecotServer) -> None:
    with server.client() as client:
        for name in (WATCHED, *FOLDERS):
            if client.folder_exists(name):
                client.delete_folder(name)
        client.create_folder(WATCHED)


def _recreate(server: DovecotServer, raws: list[bytes]) -> tuple[int, int]:
    """The mailbox deleted and made again from a backup: (old, new) UIDVALIDITY."""
    with server.client() as client:
        old = int(client.select_folder(WATCHED)[b"UIDVALIDITY"])
        client.close_folder()
        client.delete_folder(WATCHED)
        client.create_folder(WATCHED)
        for raw in raws:
            client.append(WATCHED, raw)
        new = int(client.select_folder(WATCHED, readonly=True)[b"UIDVALIDITY"])
    return old, new


def test_imap_poller_killed_between_commit_and_move_and_a_new_uidvalidity(
        dovecot: DovecotServer, tmp_path: Path, report: object) -> None:
    url = f"sqlite:///{tmp_path / 'ticketgw.db'}"
    runtime = make_runtime(url, tmp_path)
    world = seed(runtime)
    rcpt = world.reply_address(world.open(TicketType.TECH_SUPPORT, RECEIPT), Role.CUSTOMER)
    first, new = _mails("first", FIRST, rcpt), _mails("new", NEW, rcpt)
    _fresh_folders(dovecot)
    for mail in first:
        dovecot.append(mail.raw, WATCHED)
    proxy = PausableProxy(dovecot.port).start()
    env = {"TICKETGW_DATABASE_URL": url, "TICKETGW_SECRET_KEY": "test-secret",
           "TICKETGW_OUTBOX_MAILDIR": str(tmp_path / "outbox"),
           "TICKETGW_IMAP_URL": (f"imap://{dovecot.user}:{dovecot.password}@127.0.0.1:"
                                 f"{proxy.port}/{WATCHED}")}
    poller = RoleProcess("imap", env, tmp_path / "imap.log", tmp_path).start()
    started = time.monotonic()
    caught = 0  # kills that landed after a commit and before its move
    by_id = {m.message_id: m.raw for m in first}
    try:
        rng = random.Random(11)
        for point in sorted(rng.sample(range(3, FIRST - 5, 3), KILLS)):
            wait_until(lambda point=point: _committed(runtime.engine) >= point, 90, 0.02,
                       "the poller takes mail in")
            mark = _newest(runtime.engine)
            proxy.pause()  # the poller's next IMAP command (its MOVE) goes nowhere
            try:
                wait_until(lambda mark=mark: _committed_and_still_there(
                    runtime.engine, dovecot, mark, by_id), 3, 0.05, "a commit before its move")
                caught += 1
            except AssertionError:
                pass  # it was fetching the next mails, not between a commit and a move
            poller.kill()
            proxy.resume()
            poller.start()
        poller.kill()  # and the mailbox is restored from a backup while it is down
        left = _in(dovecot, WATCHED)
        restored = [m.raw for m in first[:RESTORED]]
        old, fresh = _recreate(dovecot, restored + left + [m.raw for m in new])
        poller.start()
        wait_until(lambda: _count_in(dovecot, WATCHED) == 0, 90, 0.1,
                   "the poller takes every mail of the new mailbox")
        assert poller.stop() == 0, poller.log_text()[-3000:]
    finally:
        poller.kill()
        proxy.stop()
    mails = first + new
    copies = stored_copies(runtime.engine, [m.message_id for m in mails])
    moved = _in(dovecot, PROCESSED)
    moved_ids = {m.message_id for m in mails if m.raw in moved}  # acknowledged: moved aside
    count = Count(sent=len(mails), acknowledged=len(moved_ids),
                  stored=len([i for i in moved_ids if copies.get(i, 0) >= 1]),
                  duplicates=sum(max(0, n - 1) for n in copies.values()),
                  lost=len([i for i in moved_ids if copies.get(i, 0) == 0]))
    report(f"{count.line()} ({KILLS} kills, {caught} between a commit and its move; "
           f"UIDVALIDITY {old} -> {fresh} with {RESTORED} restored copies and "
           f"{len(left)} unprocessed mails; {elapsed(started)} s)")
    with runtime.engine.connect() as conn:
        tries_left = conn.execute(select(func.count()).select_from(ImapAttempt)).scalar_one()
    runtime.close()
    assert caught >= 1, "no kill landed between a commit and its move"
    assert old != fresh and "UIDVALIDITY changed" in poller.log_text()
    assert (count.acknowledged, count.stored, count.duplicates, count.lost) == (
        len(mails), len(mails), 0, 0)
    assert set(copies) == {m.message_id for m in mails}
    assert len(moved) == len(mails) + RESTORED, "each copy taken in and moved once"
    assert _in(dovecot, FAILED) == [] and _in(dovecot, REJECTED) == []
    assert tries_left == 0
