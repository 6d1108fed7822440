"""Intake off the event loop, in batches that share one transaction and one commit.

Mails that arrive together are taken in together (group commit), and each is answered only
after that commit."""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from collections.abc import Callable

from gateway.services import metrics
from gateway.services.runtime import Runtime
from inbound.intake import Incoming, Outcome, receive_many

# Under load, a batch waits up to this long for more mail to share its commit, but never for
# more mails than there are connections (PostgreSQL's commit_delay and commit_siblings).
# Measured with 8 connections: the listener's CPU a mail 4.7 -> 3.7 ms, mails/s +15 %.
LINGER = 0.004
MAX_BATCH = 16  # mails a commit at most: the first of them waits for the rest


class IntakeQueue:
    """Mails waiting for intake, taken by `threads` threads in batches: each thread takes
    what has arrived (up to `max_batch`) and runs it as one transaction with one commit
    (group commit), then answers every mail of it. Under load, mails that arrive while a
    batch runs share the next commit, and a batch waits a moment (LINGER) for company;
    alone, a mail is its own batch and waits for nothing. The event loop only queues and
    awaits."""

    def __init__(self, runtime: Runtime, threads: int, max_batch: int = MAX_BATCH,
                 senders: Callable[[], int] = lambda: MAX_BATCH) -> None:
        self.runtime = runtime
        self.senders = senders  # how many may send at once: the open connections
        self.max_batch = max_batch
        self._queue: queue.SimpleQueue[tuple[Incoming, asyncio.Future[Outcome]] | None] = (
            queue.SimpleQueue())
        self._busy = False  # the last batch had company: more mail is likely on its way
        self._threads = [threading.Thread(target=self._run, name=f"intake-{i}", daemon=True)
                         for i in range(threads)]
        for thread in self._threads:
            thread.start()

    def submit(self, mail: Incoming) -> asyncio.Future[Outcome]:
        future: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        self._queue.put((mail, future))
        return future

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None or self._take(first):
                return

    def _take(self, first: tuple[Incoming, asyncio.Future[Outcome]]) -> bool:
        """Run one batch starting with `first`; True when the stop sentinel came."""
        batch = [first]
        stopping = self._drain(batch)
        if not stopping and self._busy and len(batch) < self.max_batch:
            stopping = self._linger(batch)

        def more() -> list[Incoming]:
            # asked when this process's turn to write has come (SQLite: another process may
            # have written meanwhile): what arrived while it waited joins the batch
            nonlocal stopping
            known = len(batch)
            stopping = self._drain(batch) or stopping
            return [mail for mail, _ in batch[known:]]

        outcomes = receive_many(self.runtime, [mail for mail, _ in batch],
                                None if stopping else more)
        # one wake-up of the event loop for the whole batch, not one a mail
        answers = [(future, outcome) for (_, future), outcome in zip(batch, outcomes, strict=True)]
        batch[0][1].get_loop().call_soon_threadsafe(_resolve, answers)
        metrics.intake_batch(len(batch))
        self._busy = len(batch) > 1
        return stopping

    def _linger(self, batch: list[tuple[Incoming, asyncio.Future[Outcome]]]) -> bool:
        """Under load, wait up to LINGER for more mail to share the commit, as long as more
        connections are open than mails in the batch; True when the stop sentinel came."""
        deadline = time.monotonic() + LINGER
        while len(batch) < min(self.max_batch, self.senders()):
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                item = self._queue.get(timeout=left)
            except queue.Empty:
                break
            if item is None:
                return True
            batch.append(item)
        return False

    def _drain(self, batch: list[tuple[Incoming, asyncio.Future[Outcome]]]) -> bool:
        """Add what is queued to `batch`, up to the limit; True when the stop sentinel came."""
        while len(batch) < self.max_batch:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return False
            if item is None:
                return True
            batch.append(item)
        return False

    def stop(self) -> None:
        """After the mail already queued: each thread stops at its sentinel."""
        for _ in self._threads:
            self._queue.put(None)
        for thread in self._threads:
            thread.join()


def _resolve(answers: list[tuple[asyncio.Future[Outcome], Outcome]]) -> None:
    for future, outcome in answers:
        if not future.done():
            future.set_result(outcome)


def pool_size(runtime: Runtime) -> int:
    """Threads for intake, each taking batches. SQLite has one writer at a time and every
    intake writes: more threads only wait for the write lock, so one. PostgreSQL: two, so
    one works while the other waits on the database; more only contend for the GIL (five
    threads: p99 105 ms and fewer mails/s than two, measured in bench/inbound.py)."""
    if runtime.engine.dialect.name == "sqlite":
        return 1
    return 2
