"""The broker (a redis-server of the test's own) crashes for a while: intake keeps answering
`250`, notifications wait in the outbox, and once the broker is back the outbox drains to a
real SMTP sink, each notification once.

Redis, not RabbitMQ: a second RabbitMQ node of the test's own (Erlang VM, its own cookie and
node name) takes longer to start than this whole test, and the machine's shared RabbitMQ is
never stopped. The broker code path under test (the scheduler's sends failing, the worker's
consumer reconnecting) is Dramatiq's for either broker; the outbox, not the broker, is what
keeps the mail.
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

from sqlalchemy import func, select

from gateway.domain.facts import Role, TicketType
from store.models import OutboxMail
from tests.inbound.conftest import RECEIPT, seed
from tests.reliability.load import Senders, count_stored, replies
from tests.reliability.servers import PrivateRedis, RoleProcess, elapsed, smtp_greets
from tests.support.services import free_port, unique_name, wait_until
from ticketgw.broker import OUTBOX_PERIOD
from ticketgw.testing.runtime import make_runtime
from ticketgw.testing.smtp_sink import SmtpSink

BEFORE, DURING = 20, 40  # mails before the crash, and while the broker is down
OUTAGE = 3 * OUTBOX_PERIOD  # seconds the broker stays down at least


def _outbox(runtime_engine: object) -> dict[str, int]:
    with runtime_engine.connect() as conn:  # type: ignore[attr-defined]
        return dict(conn.execute(select(OutboxMail.state, func.count())
                                 .group_by(OutboxMail.state)).all())


def test_broker_crash_keeps_intake_answering_and_the_outbox_drains(
        private_redis: PrivateRedis, smtp_sink: SmtpSink, tmp_path: Path,
        report: object) -> None:
    url = f"sqlite:///{tmp_path / 'ticketgw.db'}"
    runtime = make_runtime(url, tmp_path)
    world = seed(runtime)
    rcpt = world.reply_address(world.open(TicketType.TECH_SUPPORT, RECEIPT), Role.CUSTOMER)
    port = free_port()
    env = {"TICKETGW_DATABASE_URL": url, "TICKETGW_SECRET_KEY": "test-secret",
           "TICKETGW_OUTBOX_MAILDIR": str(tmp_path / "outbox"),
           "TICKETGW_SMTP_LISTEN": f"127.0.0.1:{port}", "TICKETGW_SMTP_RELAY": smtp_sink.address,
           "TICKETGW_BROKER_URL": f"{private_redis.url}?namespace={unique_name('ticketgw_f_')}",
           # every reply notifies the vendor: no digest may hold them back in this test
           "TICKETGW_NOTIFY_CAP": "100000/600"}
    roles = [RoleProcess(name, env, tmp_path / f"{name}.log", tmp_path).start()
             for name in ("smtp", "worker", "scheduler")]
    started = time.monotonic()
    before = replies(BEFORE, lambda i: rcpt, "broker-before")
    during = replies(DURING, lambda i: rcpt, "broker-during")
    try:
        wait_until(lambda: smtp_greets(port), 30, 0.05, "smtp role greets")
        Senders(before, lambda: [port], seed=4).start().join(120)
        wait_until(lambda: set(_outbox(runtime.engine)) == {"sent"}, 60, 0.1,
                   "the notifications before the crash go out")
        private_redis.kill()
        down = time.monotonic()
        Senders(during, lambda: [port], seed=5).start().join(120)
        scheduler = roles[2]
        # the outage lasts a few scheduler periods (the fault's length, not a wait for a
        # state), and the scheduler has met it
        wait_until(lambda: time.monotonic() - down >= OUTAGE
                   and "could not enqueue a sweep" in scheduler.log_text(), 60, 0.1,
                   "the scheduler meets the broker outage")
        held = _outbox(runtime.engine).get("pending", 0)
        private_redis.start()
        up = time.monotonic()
        failures = scheduler.log_text().count("could not enqueue a sweep")
        # a sweep that leased rows and then could not hand them to the broker leaves them
        # for the dispatch lease (60 s): the drain may take that long, never longer
        wait_until(lambda: set(_outbox(runtime.engine)) == {"sent"}, 150, 0.2,
                   "the outbox drains once the broker is back")
        drained = time.monotonic()
        for role in roles:
            assert role.stop() == 0, role.log_text()[-3000:]
    finally:
        for role in roles:
            role.kill()
    mails = before + during
    count = count_stored(runtime.engine, mails)
    with runtime.engine.connect() as conn:
        ids = [m for (m,) in conn.execute(select(OutboxMail.message_id))]
    copies = Counter(str(mail.message["Message-ID"]).strip("<>") for mail in smtp_sink.messages)
    report(f"{count.line()} ({len(ids)} notifications, {held} held while the broker was down "
           f"{up - down:.1f} s, drained {drained - up:.1f} s after it came back, delivered "
           f"{sum(copies.values())}; {elapsed(started)} s)")
    runtime.close()
    answers = {a.code for m in during for a in m.answers}
    assert answers == {250}, f"intake answered {answers} while the broker was down"
    assert (count.acknowledged, count.stored, count.duplicates, count.lost) == (
        BEFORE + DURING, BEFORE + DURING, 0, 0)
    assert held >= DURING, "notifications went out although the broker was down"
    # one failed try a sweep a period, not a retry every 50 ms: no flood of tracebacks
    assert failures <= (up - down) / OUTBOX_PERIOD + 3, f"{failures} failures logged"
    assert {i.strip("<>") for i in ids if i} == set(copies), "a notification was not delivered"
    assert set(copies.values()) == {1}, "a notification was delivered twice"
