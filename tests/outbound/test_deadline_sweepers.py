"""Many deadline sweepers at once on PostgreSQL, some killed mid-run: each refund runs once."""

from __future__ import annotations

import multiprocessing
import os
import random
import signal

import pytest
from sqlalchemy import func, select

from gateway.domain.clock import format_instant
from gateway.domain.settings import parse_settings
from store.models import Event, Order, OutboxMail, Ticket
from ticketgw.app import build_runtime
from ticketgw.testing.bulk import AMOUNT_CENTS, AT, seed_tickets, sweep_in_process

pytestmark = pytest.mark.postgres

PROCESSES = 8
DUE = 2000


def test_killed_and_restarted_sweepers_execute_every_ticket_once(pg_database_url: str) -> None:
    settings = parse_settings({}, {"TICKETGW_DATABASE_URL": pg_database_url,
                                   "TICKETGW_SECRET_KEY": "test-secret"})
    runtime = build_runtime(settings)  # creates the schema
    seed_tickets(runtime.engine, total=DUE + 500, open_count=DUE + 200, due=DUE)
    spawn = multiprocessing.get_context("spawn")
    rng = random.Random(1234)

    def start() -> multiprocessing.process.BaseProcess:
        proc = spawn.Process(target=sweep_in_process, args=(pg_database_url, format_instant(AT)))
        proc.start()
        return proc

    procs = [start() for _ in range(PROCESSES)]
    kills = 0
    try:
        while kills < 6:
            victim = procs[rng.randrange(len(procs))]
            victim.join(timeout=rng.uniform(0.3, 1.5))  # a random moment in the run
            if victim.is_alive():
                os.kill(victim.pid or 0, signal.SIGKILL)
                victim.join(timeout=10)
                assert victim.exitcode == -signal.SIGKILL
                kills += 1
            procs[procs.index(victim)] = start()
        for proc in procs:
            proc.join(timeout=180)
            assert proc.exitcode == 0, "a sweeper that was not killed failed"
    finally:
        for proc in procs:
            if proc.is_alive():
                proc.kill()
    with runtime.sessions() as session:
        per_ticket = session.execute(
            select(Event.ticket_id, func.count()).where(Event.kind == "processed")
            .group_by(Event.ticket_id)).all()
        assert len(per_ticket) == DUE
        assert {count for _, count in per_ticket} == {1}
        assert {t for t, _ in per_ticket} == set(range(1, DUE + 1))
        refunded = session.execute(
            select(Order.refunded_amount, func.count()).group_by(Order.refunded_amount)).all()
        assert dict(refunded) == {AMOUNT_CENTS / 100: DUE, 0: 500}
        assert session.execute(select(func.count()).select_from(Ticket)
                               .where(Ticket.due_at <= AT)).scalar_one() == 0
        mails = session.execute(select(func.count()).select_from(OutboxMail)
                                .where(OutboxMail.event == "processed")).scalar_one()
        assert mails == 2 * DUE
    runtime.close()
