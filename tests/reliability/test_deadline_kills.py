"""Schedulers and workers (`ticketgw scheduler`, `ticketgw worker` on a redis-server of the
test's own) over thousands of due refunds on PostgreSQL, SIGKILLed at random: every deadline
runs exactly once, its mail is written once, and no ticket is left claimed or due."""

from __future__ import annotations

import random
import time
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select, text

from store.models import Event, Order, OutboxMail, Ticket
from tests.reliability.load import Count
from tests.reliability.servers import PrivateRedis, RoleProcess, elapsed
from tests.support.services import unique_name, wait_until
from ticketgw.testing.bulk import AMOUNT_CENTS, seed_tickets
from ticketgw.testing.runtime import make_runtime

pytestmark = pytest.mark.postgres

# The target is 10,000 due deadlines; this is what fits the suite's share of CI on 2 cores:
# 1,000 with 10 kills took 39 s of CPU, most of it the 18 role processes starting.
DUE = 1000
SCHEDULERS = WORKERS = 4
KILLS = 6


def _processed(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(Event)
                                .where(Event.kind == "processed")).scalar_one())


def _suppress_everyone(engine: Engine, total: int) -> None:
    """The seeded parties' addresses are suppressed: the workers give each notification up
    at once instead of rendering 2 * DUE mails, which is not what this test is about."""
    with engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO address_state (address, suppressed_since, rate_count) "
            "SELECT 'c' || i || '@example.org', now(), 0 FROM generate_series(1, :n) AS i "
            "UNION ALL SELECT 'sales@acme.example', now(), 0"), {"n": total})


def test_killed_schedulers_and_workers_run_every_deadline_once(
        private_pg_url: str, private_redis: PrivateRedis, tmp_path: Path,
        report: object) -> None:
    runtime = make_runtime(private_pg_url, tmp_path)  # creates the schema
    # bulk's instant lies in the past of the roles' real clock: every open ticket is due
    seed_tickets(runtime.engine, total=DUE + 200, open_count=DUE, due=DUE)
    _suppress_everyone(runtime.engine, DUE + 200)
    env = {"TICKETGW_DATABASE_URL": private_pg_url, "TICKETGW_SECRET_KEY": "test-secret",
           "TICKETGW_OUTBOX_MAILDIR": str(tmp_path / "outbox"),
           "TICKETGW_BROKER_URL": f"{private_redis.url}?namespace={unique_name('ticketgw_f_')}"}
    roles = [RoleProcess(role, env, tmp_path / f"{role}-{i}.log", tmp_path)
             for role, count in (("scheduler", SCHEDULERS), ("worker", WORKERS))
             for i in range(count)]
    started = time.monotonic()
    rng = random.Random(13)
    kills = 0
    try:
        for role in roles:
            role.start()
        for point in sorted(rng.sample(range(DUE // 20, DUE * 9 // 10), KILLS)):
            wait_until(lambda point=point: _processed(runtime.engine) >= point, 120, 0.05,
                       "the deadlines are being run")
            victim = rng.choice(roles)
            victim.kill()
            kills += 1
            victim.start()
        wait_until(lambda: _processed(runtime.engine) >= DUE and not _due(runtime.engine),
                   120, 0.2, "every deadline has run")
        for role in roles:
            role.wait_logged(f"{role.role} running")
            assert role.stop() == 0, role.log_text()[-3000:]
    finally:
        for role in roles:
            role.kill()
    _check(runtime.engine, kills, started, report)
    runtime.close()


def _due(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(Ticket)
                                .where(Ticket.due_at <= func.now())).scalar_one())


def _check(engine: Engine, kills: int, started: float, report: object) -> None:
    with engine.connect() as conn:
        per_ticket = dict(conn.execute(select(Event.ticket_id, func.count())
                                       .where(Event.kind == "processed")
                                       .group_by(Event.ticket_id)).all())
        refunded = dict(conn.execute(select(Order.refunded_amount, func.count())
                                     .group_by(Order.refunded_amount)).all())
        mails = dict(conn.execute(select(OutboxMail.ticket_id, func.count())
                                  .where(OutboxMail.event == "processed")
                                  .group_by(OutboxMail.ticket_id)).all())
        half_done = conn.execute(select(func.count()).select_from(Ticket).where(
            Ticket.id <= DUE, (Ticket.status != "closed") | (Ticket.close_reason != "processed")
            | Ticket.due_at.is_not(None))).scalar_one()
        locks = conn.execute(text(
            "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
            "WHERE c.relname = 'tickets' AND l.pid <> pg_backend_pid()")).scalar_one()
    count = Count(sent=DUE, acknowledged=len(per_ticket), stored=len(per_ticket),
                  duplicates=sum(n - 1 for n in per_ticket.values()),
                  lost=DUE - len(set(per_ticket) & set(range(1, DUE + 1))))
    report(f"{count.line()} (deadlines: {SCHEDULERS} schedulers, {WORKERS} workers, "
           f"{kills} kills; {elapsed(started)} s)")  # type: ignore[operator]
    assert set(per_ticket) == set(range(1, DUE + 1)), "a deadline did not run, or a wrong one"
    assert set(per_ticket.values()) == {1}, "a deadline ran twice"
    assert refunded == {AMOUNT_CENTS / 100: DUE, 0: 200}, "a refund was paid twice or not"
    assert set(mails.values()) == {2} and len(mails) == DUE, "its mail was written twice"
    assert half_done == 0 and locks == 0, "a ticket was left claimed"
