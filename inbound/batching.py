"""Intake off the event loop, in batches that share one transaction and one commit.

Mails that arrive together are taken in together (group commit), and each is answered only
after that commit."""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from gateway.domain.redaction import redact_text
from gateway.services import metrics
from gateway.services.runtime import Runtime
from inbound.intake import TEMPFAIL, Incoming, Outcome, receive_many

log = logging.getLogger("ticketgw.inbound")

# Under load, a batch waits up to this long for more mail to share its commit, but never for
# more mails than there are connections (PostgreSQL's commit_delay and commit_siblings).
# Measured with 8 connections: the listener's CPU a mail 4.7 -> 3.7 ms, mails/s +15 %.
LINGER = 0.004
MAX_BATCH = 16  # mails a commit at most: the first of them waits for the rest
# An idle intake thread looks up this often: a stop, or an exception raised in it from outside
# (a thread can be killed no other way), then takes effect while it holds no mail.
WAKE = 1.0
# A thread this long on one batch is hung, not busy (a database that stopped answering on a
# half-open connection, a lock nobody releases): its health counts it as not working. A
# batch takes milliseconds; a sender waits 10 minutes for its answer (RFC 5321 4.5.3.2.6).
STUCK_AFTER = 120.0
# The answer to the mail a thread held when it died. Whether it was stored is not known: a
# retry of a mail that was is a duplicate, which changes nothing.
NOT_TAKEN = Outcome("failed", TEMPFAIL, "intake thread died; not stored", None, None)

Item = tuple[Incoming, "asyncio.Future[Outcome]"]


@dataclass(frozen=True)
class IntakeHealth:
    """What the intake threads are now: `alive` (working) of `threads`, restarts since
    start; `stuck` says which live threads have been on one batch for over STUCK_AFTER
    (not counted as alive)."""

    threads: int
    alive: int
    restarts: int
    last_error: str
    stuck: tuple[str, ...] = ()


class IntakeQueue:
    """Mails waiting for intake, taken by `threads` threads in batches: each thread takes
    what has arrived (up to `max_batch`) and runs it as one transaction with one commit
    (group commit), then answers every mail of it. Under load, mails that arrive while a
    batch runs share the next commit, and a batch waits a moment (LINGER) for company;
    alone, a mail is its own batch and waits for nothing. The event loop only queues and
    awaits.

    A thread that dies all the same answers the mail it held `451 4.3.0` (the sender's to
    retry) and sets `ended`; `revive` (inbound.supervisor calls it) starts another in its
    place."""

    def __init__(self, runtime: Runtime, threads: int, max_batch: int = MAX_BATCH,
                 senders: Callable[[], int] = lambda: MAX_BATCH,
                 stuck_after: float = STUCK_AFTER) -> None:
        self.runtime = runtime
        self.senders = senders  # how many may send at once: the open connections
        self.max_batch = max_batch
        self._queue: queue.SimpleQueue[Item | None] = queue.SimpleQueue()
        self._busy = False  # the last batch had company: more mail is likely on its way
        self.ended = threading.Event()  # a thread has ended: the supervisor looks
        self.restarts = 0
        self.last_error = ""
        self._stopping = False
        self._hands: list[list[Item]] = [[] for _ in range(threads)]  # what each thread holds
        self.stuck_after = stuck_after
        # when each thread took up the batch it is on (time.monotonic()); None: waiting
        self._since: list[float | None] = [None] * threads
        self._ended_slots: set[int] = set()  # whose thread has ended, or is ending
        self._threads = [self._start(slot) for slot in range(threads)]

    def _start(self, slot: int) -> threading.Thread:
        thread = threading.Thread(target=self._serve, args=(slot,), name=f"intake-{slot}",
                                  daemon=True)
        thread.start()
        return thread

    def submit(self, mail: Incoming) -> asyncio.Future[Outcome]:
        future: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        self._queue.put((mail, future))
        return future

    def _serve(self, slot: int) -> None:
        hand = self._hands[slot]
        try:
            self._run(slot, hand)
        except BaseException as exc:  # noqa: BLE001 - dying, it still answers what it holds
            self.last_error = redact_text(f"{type(exc).__name__}: {exc}")[:300]
            held = len(hand)
            if hand:
                _answer(hand, [NOT_TAKEN] * held)
            log.critical("intake thread died", exc_info=True,
                         extra={"intake_thread": f"intake-{slot}", "mails_held": held})
        finally:
            hand.clear()
            self._since[slot] = None
            self._ended_slots.add(slot)
            self.ended.set()

    def _run(self, slot: int, hand: list[Item]) -> None:
        while True:
            try:
                first = self._queue.get(timeout=WAKE)
            except queue.Empty:
                continue
            if first is None:
                return
            hand.append(first)
            self._since[slot] = time.monotonic()
            stopping = self._take(hand)
            self._since[slot] = None
            hand.clear()
            if stopping:
                return

    def _take(self, batch: list[Item]) -> bool:
        """Run one batch, `batch` holding its first mail (more join it); True when the
        stop sentinel came."""
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

        mails = [mail for mail, _ in batch]
        try:
            outcomes = receive_many(self.runtime, mails, None if stopping else more)
        except Exception:  # noqa: BLE001 - it never raises; if it did, each mail still gets
            log.exception("intake failed outside any mail; answered 451")  # an answer
            outcomes = [NOT_TAKEN] * len(batch)
        _answer(batch, outcomes)
        metrics.intake_batch(len(batch))
        self._busy = len(batch) > 1
        return stopping

    def _linger(self, batch: list[Item]) -> bool:
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

    def _drain(self, batch: list[Item]) -> bool:
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

    def revive(self) -> list[str]:
        """Start a new thread in the place of each one that has ended (unless stopping);
        the names of those started."""
        self.ended.clear()
        started: list[str] = []
        for slot, thread in enumerate(self._threads):
            if self._stopping:
                break
            if slot in self._ended_slots:
                thread.join()  # it is past its last line
                self._ended_slots.discard(slot)
            elif thread.is_alive():
                continue
            self._threads[slot] = self._start(slot)
            self.restarts += 1
            started.append(thread.name)
        return started

    @property
    def threads(self) -> list[threading.Thread]:
        """The intake threads now (a copy: one that dies is replaced in its place)."""
        return list(self._threads)

    def health(self) -> IntakeHealth:
        now = time.monotonic()
        alive = stuck = 0
        notes = []
        for slot, thread in enumerate(self._threads):
            if not thread.is_alive():
                continue
            since = self._since[slot]
            if since is not None and now - since > self.stuck_after:
                stuck += 1
                notes.append(f"{thread.name} has been on one batch of {len(self._hands[slot])} "
                             f"mails for {now - since:.0f} s (hung: its senders wait)")
            else:
                alive += 1
        return IntakeHealth(len(self._threads), alive, self.restarts,
                            "; ".join(notes) or self.last_error,
                            tuple(note.split(" ", 1)[0] for note in notes))

    def stop(self) -> None:
        """After the mail already queued: each thread stops at its sentinel."""
        self._stopping = True
        for _ in self._threads:
            self._queue.put(None)
        for thread in self._threads:
            thread.join()


def _answer(batch: list[Item], outcomes: list[Outcome]) -> None:
    # one wake-up of the event loop for the whole batch, not one a mail
    answers = [(future, outcome) for (_, future), outcome in zip(batch, outcomes, strict=True)]
    batch[0][1].get_loop().call_soon_threadsafe(_resolve, answers)


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
