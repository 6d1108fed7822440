"""Two batches of replies to the same tickets at once, on PostgreSQL: they must not deadlock.

Found by the SIGKILL load (test_smtp_kills.py) with replies to two tickets: every intake
thread of every listener process takes a batch in one transaction, and each mail of a batch
locks its ticket (`FOR UPDATE`) in the order the mails came. Two batches naming tickets A and
B in opposite orders each hold one lock and wait for the other; PostgreSQL breaks the cycle
only after `deadlock_timeout` (1 s), and the losing batch then runs again one mail at a time.
Nothing is lost (the fallback takes each mail alone), but every such cycle stalls both
batches for a second: 600 replies to two tickets took 46 s instead of 19 s with one ticket.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from gateway.domain.facts import Role, TicketType
from inbound.intake import Incoming, Outcome, receive_many
from tests.inbound.conftest import RECEIPT, SUB_RECEIPT, make_mail, seed
from ticketgw.testing.runtime import make_runtime

pytestmark = pytest.mark.postgres


def test_batches_naming_the_same_tickets_in_opposite_orders_do_not_deadlock(
        pg_database_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    runtime = make_runtime(pg_database_url, tmp_path)
    world = seed(runtime)
    first, second = (world.open(TicketType.TECH_SUPPORT, r) for r in (RECEIPT, SUB_RECEIPT))

    def reply(number: int, n: int) -> Incoming:
        sender = f"ann.order{n}@example.org"
        return Incoming(make_mail(sender=sender, body=f"note {n}"), sender,
                        world.reply_address(number, Role.CUSTOMER))

    batches = [[reply(first, 1), reply(second, 2)], [reply(second, 3), reply(first, 4)]]
    # Timing, not a fault: each batch holds its first ticket's lock before either asks
    # for its second, the interleaving two busy intake threads reach by themselves.
    both_hold_one = threading.Barrier(2, timeout=3)
    mine = threading.local()

    def after_lock(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if getattr(mine, "waiting", False) and "FOR UPDATE" in statement:
            mine.waiting = False
            try:
                both_hold_one.wait()
            except threading.BrokenBarrierError:
                pass  # the other batch waits for this one's locks: it cannot get here

    outcomes: list[list[Outcome]] = [[], []]

    def take(index: int) -> None:
        mine.waiting = True
        outcomes[index] = receive_many(runtime, batches[index])

    event.listen(runtime.engine, "after_cursor_execute", after_lock)
    caplog.set_level(logging.WARNING, logger="ticketgw.inbound")
    try:
        threads = [threading.Thread(target=take, args=(i,)) for i in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
    finally:
        event.remove(runtime.engine, "after_cursor_execute", after_lock)
        runtime.close()
    assert [[o.state for o in batch] for batch in outcomes] == [["applied"] * 2] * 2
    assert [r.getMessage() for r in caplog.records if "taking each alone" in r.getMessage()
            ] == [], "a batch deadlocked and ran again one mail at a time"
