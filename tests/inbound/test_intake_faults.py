"""Intake survives what would end it: the database and the spool directory down together, an
intake thread that dies. Whole SMTP answers over real sockets; health through /healthz."""

from __future__ import annotations

import contextlib
import ctypes
import logging
import re
import threading
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from sqlalchemy import func, select
from starlette.testclient import TestClient

from gateway.domain.facts import Role
from gateway.services import intake_health, metrics
from gateway.services.runtime import Runtime
from inbound import batching, intake
from store.db import writer_turn
from store.models import InboundMail, Ticket
from tests.inbound.conftest import SmtpServer, World, make_mail, seed, send
from tests.support import wait_until
from tests.support.services import PG_ADMIN_URL, postgres_url, require_service
from ticketgw.testing.runtime import make_runtime
from web.app import create_app

NOT_STORED = (451, b"4.3.0 we cannot store mail just now; please try again later")


@contextlib.contextmanager
def connections_refused(database: str) -> Iterator[None]:
    """PostgreSQL refuses every connection to `database` (its open ones are cut) until the
    block ends: the database is down for the program, and nothing of it is mocked."""
    admin = PG_ADMIN_URL.replace("postgresql+psycopg://", "postgresql://")
    name = sql.Identifier(database)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS false").format(name))
        conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                     "WHERE datname = %s AND pid <> pg_backend_pid()", (database,))
        try:
            yield
        finally:
            conn.execute(sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS true").format(name))


def kill(thread: threading.Thread) -> None:
    """Raise SystemExit in `thread`: the one way a Python thread can be killed from outside."""
    assert thread.ident is not None
    raised = ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread.ident),
                                                        ctypes.py_object(SystemExit))
    assert raised == 1


def _restarts_counted() -> float:
    """`ticketgw_intake_restarts_total` as /metrics shows it."""
    found = re.search(rb"^ticketgw_intake_restarts_total ([0-9.e+]+)$", metrics.scrape(), re.M)
    assert found is not None
    return float(found[1])


def _stored(runtime: Runtime) -> int:
    with runtime.sessions() as session:
        return int(session.execute(select(func.count()).select_from(InboundMail)).scalar_one())


@pytest.mark.postgres
def test_database_and_spool_both_down_answer_451_and_intake_lives_on(tmp_path: Path) -> None:
    """The double fault: PostgreSQL refuses connections and the spool folder cannot be made
    (a regular file has its name: root cannot write through that, as it can through chmod).
    SQLite has no fault as real and as quick (a held lock waits out its 30 s busy timeout).
    Each mail is answered 451 and intake goes on: once the faults are gone, the next is
    taken in. Before, `park` raised out of the intake thread and no mail got an answer."""
    require_service("postgres")
    with postgres_url() as url:
        runtime = make_runtime(url, tmp_path)
        world = seed(runtime)
        number = world.open()
        address = world.reply_address(number, Role.CUSTOMER)
        spool = intake.spool_dir(runtime)
        spool.parent.mkdir(parents=True, exist_ok=True)
        spool.write_text("a file where the spool folder should be\n")
        server = SmtpServer(runtime)
        try:
            with connections_refused(url.rsplit("/", 1)[1]):
                for attempt in ("first", "second"):  # the second: the first ended nothing
                    answer = send(server, make_mail(body=f"{attempt} try"), rcpt=address)
                    assert answer == NOT_STORED
            spool.unlink()
            code, text = send(server, make_mail(body="after the outage"), rcpt=address)
            assert (code, text) == (250, f"2.0.0 threaded to #{number}".encode())
            assert [m["text"] for m in world.ticket(number)["messages"]] == [  # type: ignore[union-attr]
                "first message", "after the outage"]
            assert _stored(runtime) == 1  # a 451 keeps nothing: the sender retries
            assert server.listener.intake.restarts == 0
        finally:
            server.stop()
            runtime.close()


def test_a_killed_intake_thread_is_restarted_logged_and_reported(
        smtp: SmtpServer, world: World, caplog: pytest.LogCaptureFixture) -> None:
    """Killed while idle (before, the thread waited for mail without ever looking up, and
    once killed nothing took mail in: every later mail went unanswered)."""
    queue = smtp.listener.intake
    victim = queue.threads[0]
    counted = _restarts_counted()
    with caplog.at_level(logging.ERROR, logger="ticketgw.inbound"):
        kill(victim)
        wait_until(lambda: not victim.is_alive(), message="the killed thread ended")
        wait_until(lambda: queue.restarts == 1, message="the supervisor restarted it")
    assert queue.health().alive == queue.health().threads
    [logged] = [r for r in caplog.records if r.getMessage() == "intake thread restarted"]
    assert (logged.__dict__["intake_thread"], logged.__dict__["restarts"]) == ("intake-0", 1)
    assert _restarts_counted() == counted + 1
    number = world.open()
    code, _ = send(smtp, make_mail(body="after the restart"),
                   rcpt=world.reply_address(number, Role.CUSTOMER))
    assert code == 250
    assert world.ticket(number)["messages"][-1]["text"] == "after the restart"  # type: ignore[index]

    def reported() -> dict[str, object] | None:
        with world.runtime.sessions() as session:
            found = intake_health.report(session, world.runtime.clock.now())
        return found if found and found["intake"] == "restarted" else None

    wait_until(reported, message="the heartbeat row says restarted")
    with TestClient(create_app(world.runtime)) as client:
        response = client.get("/healthz")
    body = response.json()
    assert response.status_code == 200 and body["intake"] == "restarted"
    [listener] = body["listeners"]
    assert (listener["restarts"], listener["alive"]) == (1, listener["threads"])
    assert listener["last_error"].startswith("SystemExit")


def test_a_thread_that_dies_holding_mail_answers_it_451(
        world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing real kills an intake thread in the middle of a batch any more, so the death
    is injected (a BaseException from intake, which no `except Exception` stops). Its mail is
    answered 451, not left waiting for ever, and its replacement takes the next one."""
    real = batching.receive_many
    calls: list[int] = []

    def dies_once(*args: object, **kwargs: object) -> object:
        calls.append(1)
        if len(calls) == 1:
            raise SystemExit("injected: the intake thread dies holding a batch")
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(batching, "receive_many", dies_once)
    server = SmtpServer(world.runtime)
    try:
        number = world.open()
        address = world.reply_address(number, Role.CUSTOMER)
        code, text = send(server, make_mail(body="held when it died"), rcpt=address)
        assert (code, text[:5]) == (451, b"4.3.0")
        wait_until(lambda: server.listener.intake.restarts == 1, message="restarted")
        code, _ = send(server, make_mail(body="taken by the new thread"), rcpt=address)
        assert code == 250
        assert world.ticket(number)["messages"][-1]["text"] == "taken by the new thread"  # type: ignore[index]
    finally:
        server.stop()


@contextlib.contextmanager
def ticket_held(world: World, number: int) -> Iterator[None]:
    """Another writer holds what a reply to ticket `number` needs: SQLite's write turn, or
    the ticket's row on PostgreSQL (a transaction that never ends, as a hung client's)."""
    runtime = world.runtime
    if runtime.engine.dialect.name == "sqlite":
        with writer_turn(runtime.engine):
            yield
        return
    with runtime.sessions.begin() as session:
        session.execute(select(Ticket.id).where(Ticket.number == number).with_for_update())
        yield


def test_a_hung_intake_thread_is_reported_and_its_mail_answered_once_free(
        smtp: SmtpServer, world: World) -> None:
    """A thread on one batch for longer than `stuck_after` is counted as not working, with a
    sentence saying so (the heartbeat row, and so /healthz, carry it); it counts again once
    the batch is done, and the mail it held is answered then."""
    queue = smtp.listener.intake
    queue.stuck_after = 0.5
    number = world.open()
    answers: list[int] = []
    with ticket_held(world, number):
        sender = threading.Thread(target=lambda: answers.append(send(
            smtp, make_mail(body="while the ticket is held"),
            rcpt=world.reply_address(number, Role.CUSTOMER))[0]))
        sender.start()
        hung = wait_until(lambda: queue.health().stuck, message="the held thread is hung")
        health = queue.health()
        assert health.alive == health.threads - 1
        assert re.search(rf"^{hung[0]} has been on one batch of 1 mails for \d+ s",
                         health.last_error)
    sender.join(30)
    assert answers == [250]
    # the answer goes out just before the thread is done with its batch
    wait_until(lambda: queue.health().alive == queue.health().threads,
               message="the thread counts again once its batch is done")
    assert queue.health().stuck == ()
    assert world.ticket(number)["messages"][-1]["text"] == "while the ticket is held"  # type: ignore[index]
