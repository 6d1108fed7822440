"""A relay that answers 4xx and 5xx, drops the connection in the middle of DATA or before its
250, and a `ticketgw worker` SIGKILLed right after the relay took a mail: every notification
is delivered, every resend carries exactly the bytes of the first try, and a second copy
exists only where the worker cannot have known of the first (counted as duplicates)."""

from __future__ import annotations

import random
import time
from collections import defaultdict
from pathlib import Path

from sqlalchemy import Engine, select, update

from gateway.domain.facts import Role, TicketType
from gateway.services.runtime import Runtime
from inbound.intake import receive
from outbound.deliver import retry_failed
from store.models import OutboxMail
from tests.inbound.conftest import RECEIPT, World, make_mail, seed
from tests.reliability import relay as faults
from tests.reliability.load import Count
from tests.reliability.relay import FaultyRelay, Kept
from tests.reliability.servers import RoleProcess, elapsed
from tests.support.services import wait_until
from ticketgw.testing.runtime import make_runtime

REPLIES = 20  # each notifies both parties: with the ticket's opening, 42 notifications
MAX_ROUNDS = 10
WEIGHTS = {faults.ACCEPT: 76, faults.TEMPORARY_AT_RCPT: 4, faults.TEMPORARY_AFTER_DATA: 5,
           faults.PERMANENT_AFTER_DATA: 3, faults.DROP_IN_DATA: 7, faults.LOST_250: 5}
CRASH_AT = 9  # the transaction after which the relay has the worker SIGKILLed

Rows = dict[int, tuple[str, int, bytes | None, str | None]]


def _notifications(world: World) -> None:
    number = world.open(TicketType.TECH_SUPPORT, RECEIPT)
    for i in range(REPLIES):
        party = (Role.CUSTOMER, Role.VENDOR)[i % 2]
        sender = f"party{i}@example.org"
        outcome = receive(world.runtime, make_mail(sender=sender, body=f"Note {i}."),
                          envelope_from=sender, recipient=world.reply_address(number, party))
        assert outcome.state == "applied", outcome


def _rows(engine: Engine) -> Rows:
    with engine.connect() as conn:
        return {r.id: (r.state, r.attempts, r.raw, r.message_id) for r in conn.execute(
            select(OutboxMail.id, OutboxMail.state, OutboxMail.attempts, OutboxMail.raw,
                   OutboxMail.message_id))}


def _time_passes(engine: Engine) -> None:
    """With no worker running: the back-off and the send leases are over."""
    with engine.begin() as conn:
        conn.execute(update(OutboxMail).where(OutboxMail.state == "pending")
                     .values(next_attempt_at=OutboxMail.created_at))


def test_every_notification_is_delivered_through_a_faulty_relay(tmp_path: Path,
                                                                 report: object) -> None:
    url = f"sqlite:///{tmp_path / 'ticketgw.db'}"
    runtime = make_runtime(url, tmp_path)
    _notifications(seed(runtime))
    rng = random.Random(7)
    names, weights = zip(*WEIGHTS.items(), strict=True)
    worker: list[RoleProcess] = []
    crashed: list[float] = []

    def plan(n: int) -> str:
        return faults.CRASH_AFTER_ACCEPT if n == CRASH_AT else rng.choices(names, weights)[0]

    def crash() -> None:
        worker[0].kill()
        crashed.append(time.monotonic())

    relay = FaultyRelay(plan, crash).start()
    env = {"TICKETGW_DATABASE_URL": url, "TICKETGW_SECRET_KEY": "test-secret",
           "TICKETGW_OUTBOX_MAILDIR": str(tmp_path / "outbox"),
           "TICKETGW_SMTP_RELAY": relay.address, "TICKETGW_NOTIFY_CAP": "100000/600"}
    worker.append(RoleProcess("worker", env, tmp_path / "worker.log", tmp_path))
    started = time.monotonic()
    rounds = 0
    try:
        while {state for state, *_ in _rows(runtime.engine).values()} != {"sent"}:
            rounds += 1
            assert rounds <= MAX_ROUNDS, f"not delivered after {MAX_ROUNDS} rounds"
            _round(runtime, worker[0])
    finally:
        worker[0].kill()
        relay.stop()
    _check(runtime, relay, crashed, f"{rounds} rounds", started, report)


def _round(runtime: Runtime, worker: RoleProcess) -> None:
    """The worker runs until each mail pending at the start was tried once (a failure then
    waits out its back-off) or the relay had it killed; the operator re-queues what the
    relay refused for good (`ticketgw outbox retry`); then the back-off's minutes pass."""
    before = {i: attempts for i, (state, attempts, *_) in _rows(runtime.engine).items()
              if state == "pending"}
    worker.start()

    def tried() -> bool:
        now = _rows(runtime.engine)
        return not worker.alive or all(now[i][0] != "pending" or now[i][1] > n
                                       for i, n in before.items())

    wait_until(tried, 60, 0.1, "the worker tries every due mail")
    if worker.alive:
        assert worker.stop() == 0, worker.log_text()[-3000:]
    retry_failed(runtime)
    _time_passes(runtime.engine)


def _check(runtime: Runtime, relay: FaultyRelay, crashed: list[float], rounds: str,
           started: float, report: object) -> None:
    rows = _rows(runtime.engine)
    copies: dict[str, list[Kept]] = defaultdict(list)
    for kept in relay.kept:
        copies[kept.message_id].append(kept)
    by_id = {mid.strip("<>"): raw for _, _, raw, mid in rows.values() if mid is not None}
    count = Count(sent=len(rows), acknowledged=len(by_id),
                  stored=len(set(copies) & set(by_id)),
                  duplicates=sum(len(c) - 1 for c in copies.values()),
                  lost=len(set(by_id) - set(copies)))
    report(f"{count.line()} ({rounds}, {sum(relay.faults.values())} transactions: "
           + ", ".join(f"{relay.faults[f]} {f}" for f in faults.FAULTS if relay.faults[f])
           + f"; {elapsed(started)} s)")  # type: ignore[operator]
    runtime.close()
    assert len(crashed) == 1, "the worker was not killed after the relay took a mail"
    assert (count.acknowledged, count.stored, count.lost) == (len(rows), len(rows), 0)
    for message_id, kept in copies.items():
        stored = (by_id[message_id] or b"").replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        assert {k.raw for k in kept} == {stored}, f"a resend of {message_id} differs"
        # every copy but the last: its 250 was lost, or it was in flight when the worker died
        unexplained = [k for k in kept[:-1] if k.fault == faults.ACCEPT and k.at > crashed[0]]
        assert not unexplained, f"{message_id} was sent again after a 250 that arrived"
