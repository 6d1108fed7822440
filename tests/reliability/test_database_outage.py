"""PostgreSQL (the test's own cluster) crashes in the middle of the load: the listener answers
`451` within seconds and never `250` for a mail it then loses; once the database is back
every mail lands once, and replaying what was spooled meanwhile adds nothing."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from gateway.domain.facts import Role, TicketType
from tests.inbound.conftest import RECEIPT, seed
from tests.reliability.load import CONNECTION_LOST, Senders, count_stored, replies
from tests.reliability.servers import (
    PrivatePostgres,
    RoleProcess,
    elapsed,
    run_ticketgw,
    smtp_greets,
)
from tests.support.services import free_port, wait_until
from ticketgw.testing.runtime import make_runtime

pytestmark = pytest.mark.postgres

MAILS = 200
REFUSED_DURING_OUTAGE = 16  # 451 answers to see before the database comes back
PROMPT = 5.0  # seconds: the longest a sender may wait for its 451


def test_database_crash_answers_451_and_loses_nothing(private_postgres: PrivatePostgres,
                                                      private_pg_url: str, tmp_path: Path,
                                                      report: object) -> None:
    runtime = make_runtime(private_pg_url, tmp_path)
    world = seed(runtime)
    rcpt = world.reply_address(world.open(TicketType.TECH_SUPPORT, RECEIPT), Role.CUSTOMER)
    mails = replies(MAILS, lambda i: rcpt, "outage")
    port = free_port()
    env = {"TICKETGW_DATABASE_URL": private_pg_url, "TICKETGW_SECRET_KEY": "test-secret",
           "TICKETGW_OUTBOX_MAILDIR": str(tmp_path / "var" / "outbox"),
           "TICKETGW_SMTP_LISTEN": f"127.0.0.1:{port}"}
    role = RoleProcess("smtp", env, tmp_path / "smtp.log", tmp_path).start()
    started = time.monotonic()
    try:
        wait_until(lambda: smtp_greets(port), 30, 0.05, "smtp role greets")
        senders = Senders(mails, lambda: [port], seed=3).start()
        assert senders.wait_done(MAILS // 3, 120), "the load did not get going"
        private_postgres.stop("immediate")  # a crash: no checkpoint, connections cut
        down = time.monotonic()
        wait_until(lambda: len(_answers_since(mails, down, 451)) >= REFUSED_DURING_OUTAGE, 60,
                   0.05, "the listener answers 451 while the database is down")
        # the window closes when the restart is asked for, not when `pg_ctl start -w` returns:
        # the server takes mail (and the listener answers 250) up to a tenth of a second
        # before pg_ctl's poll sees it ready
        up = time.monotonic()
        private_postgres.start()
        senders.join(240)
        assert role.stop() == 0, role.log_text()[-3000:]
    finally:
        role.kill()
        if not private_postgres.answers():
            private_postgres.start()
    during = [a for m in mails for a in m.answers if down <= a.started and a.answered <= up]
    replay = run_ticketgw(env, tmp_path, "mail", "replay", "--json")
    assert replay.returncode == 0, replay.stderr
    replayed = json.loads(replay.stdout)
    count = count_stored(runtime.engine, mails)
    slowest = max((a.answered - a.started for a in during), default=0.0)
    report(f"{count.line()} ({len([a for a in during if a.code == 451])} answers 451 in a "
           f"{up - down:.1f} s outage, slowest {slowest:.2f} s; {replayed['replayed']} spooled "
           f"mails replayed; {elapsed(started)} s)")
    runtime.close()
    # 451, or 421 when a connection has had too many mails refused in a row (and closes)
    codes = sorted({a.code for a in during})
    assert set(codes) <= {451, 421}, f"only 451/421 while the database is down, not {codes}"
    assert slowest <= PROMPT, f"a sender waited {slowest:.1f} s for its answer"
    assert not any(a.code == CONNECTION_LOST for a in during), "the listener stopped answering"
    assert count.acknowledged == MAILS
    assert (count.stored, count.duplicates, count.lost) == (MAILS, 0, 0)
    assert replayed["failed"] == 0
    assert replayed["replayed"] >= 1, "a mail answered 451 was not kept for replay"


def _answers_since(mails: list, since: float, code: int) -> list[float]:  # type: ignore[type-arg]
    return [a.answered for m in mails for a in m.answers if a.started >= since and a.code == code]
