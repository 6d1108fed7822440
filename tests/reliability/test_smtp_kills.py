"""SIGKILL of `ticketgw smtp` at random moments under load: every mail answered 250 is stored
once, and every mail the senders retried after a lost answer is stored once too."""

from __future__ import annotations

import random
import threading
import time
from pathlib import Path

import pytest

from gateway.domain.facts import Role, TicketType
from tests.inbound.conftest import RECEIPT, seed
from tests.reliability.load import Senders, count_stored, replies
from tests.reliability.servers import RoleProcess, elapsed, smtp_greets
from tests.support.services import free_port, wait_until
from ticketgw.testing.runtime import make_runtime

# The targets are 1,000 mails and 20 kills a backend; this is what fits the suite's share of
# CI on 2 cores: a restarted role costs about 1.3 s of CPU before it listens, and 600 mails
# with 12 kills took 33 s of CPU a backend (the senders' included).
MAILS = 400
KILLS = 8
SENDERS = 8
LISTENERS = 2  # two roles on two ports, like two MX hosts: senders go to whichever answers


def _roles(url: str, tmp_path: Path) -> list[tuple[RoleProcess, int]]:
    roles = []
    for i in range(LISTENERS):
        port = free_port()
        env = {"TICKETGW_DATABASE_URL": url, "TICKETGW_SECRET_KEY": "test-secret",
               "TICKETGW_OUTBOX_MAILDIR": str(tmp_path / "outbox"),
               "TICKETGW_SMTP_LISTEN": f"127.0.0.1:{port}"}
        roles.append((RoleProcess("smtp", env, tmp_path / f"smtp-{i}.log", tmp_path), port))
    return roles


def _killer(senders: Senders, roles: list[tuple[RoleProcess, int]], rng: random.Random,
            kills: list[float], stop: threading.Event) -> None:
    """Kill a listener that is serving whenever the load passes one of KILLS random points,
    and start it again at once (it comes back while the other one serves)."""
    points = sorted(rng.sample(range(MAILS // 20, MAILS - MAILS // 10), KILLS))
    for point in points:
        if not senders.wait_done(point, 120) or stop.is_set():
            return
        serving = [(role, port) for role, port in roles if role.alive and smtp_greets(port)]
        if not serving:
            continue  # both are starting again: nothing up to kill at this moment
        role, _ = rng.choice(serving)
        role.kill()
        kills.append(time.monotonic())
        role.start()


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres",
                                                             marks=pytest.mark.postgres)])
def test_sigkilled_listeners_lose_and_double_nothing(backend: str, tmp_path: Path,
                                                     request: pytest.FixtureRequest,
                                                     report: object) -> None:
    url = (f"sqlite:///{tmp_path / 'ticketgw.db'}" if backend == "sqlite"
           else request.getfixturevalue("private_pg_url"))
    runtime = make_runtime(url, tmp_path)
    world = seed(runtime)
    # one ticket: replies to several at once deadlock on PostgreSQL (test_batch_lock_order.py)
    rcpt = world.reply_address(world.open(TicketType.TECH_SUPPORT, RECEIPT), Role.CUSTOMER)
    mails = replies(MAILS, lambda i: rcpt, f"kill-{backend}")
    roles = _roles(url, tmp_path)
    started = time.monotonic()
    rng = random.Random(20)
    kills: list[float] = []
    stop = threading.Event()
    try:
        for role, _ in roles:
            role.start()
        for _, port in roles:
            wait_until(lambda port=port: smtp_greets(port), 30, 0.05, "smtp role greets")
        senders = Senders(mails, lambda: [port for _, port in roles], threads=SENDERS,
                          seed=2).start()
        killer = threading.Thread(target=_killer, args=(senders, roles, rng, kills, stop))
        killer.start()
        senders.join(240)
        stop.set()
        killer.join(30)
        for role, port in roles:  # one started again at the end may still be importing
            wait_until(lambda port=port: smtp_greets(port), 30, 0.05, "smtp role greets")
            assert role.stop() == 0, role.log_text()[-3000:]
    finally:
        stop.set()
        for role, _ in roles:
            role.kill()
    count = count_stored(runtime.engine, mails)
    retries = sum(len(m.answers) - 1 for m in mails)
    report(f"{count.line()} ({len(kills)} kills, {retries} retries, {elapsed(started)} s)")
    runtime.close()
    assert not [m.message_id for m in mails if m.refused], "a mail was refused for good"
    assert len(kills) >= KILLS * 3 // 4, "the load ended before the listeners were killed"
    assert count.acknowledged == MAILS
    assert (count.stored, count.duplicates, count.lost) == (MAILS, 0, 0)
