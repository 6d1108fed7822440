"""Keep a listener's intake threads alive, and say how they are where `/healthz` can read it.

An intake thread should never die: a mail that fails is parked, and one that cannot even be
parked is answered `451`. Should one die all the same (a bug, an exception raised in it from
outside), the mail it held is answered `451` (inbound.batching) and this supervisor starts
another thread in its place, logs it and counts it. The listener's heartbeat row
(gateway.services.intake_health) is written from the listener's event loop, so a loop that
hangs falls silent too.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from datetime import datetime

from gateway.services import intake_health, metrics
from gateway.services.runtime import Runtime
from inbound.batching import IntakeQueue
from store.db import writer_turn

log = logging.getLogger("ticketgw.inbound")

HEARTBEAT = 15.0  # seconds between heartbeat rows (intake_health.SILENT_AFTER: four missed)
WATCH = 1.0  # seconds between looks at the threads when none has said it ended


class IntakeSupervisor:
    """Restarts `intake`'s threads as they die (started in the listener's event loop)."""

    def __init__(self, runtime: Runtime, intake: IntakeQueue, address: str, *,
                 heartbeat: float = HEARTBEAT) -> None:
        self.runtime = runtime
        self.intake = intake
        self.address = address  # host:port
        self.listener = f"{address}/{os.getpid()}"
        self.started_at = runtime.clock.now()
        self.restarted_at: datetime | None = None
        self._every = heartbeat
        self._stopping = threading.Event()
        self._stuck: tuple[str, ...] = ()  # hung threads already logged
        self._loop = asyncio.get_running_loop()
        self._beat_now = asyncio.Event()
        self._watcher = threading.Thread(target=self._watch, name="intake-supervisor",
                                         daemon=True)
        self._watcher.start()
        self._beating = self._loop.create_task(self._beat())

    def _watch(self) -> None:
        while not self._stopping.is_set():
            self.intake.ended.wait(WATCH)
            if self._stopping.is_set():
                return
            try:
                self._revive()
            except Exception:  # noqa: BLE001 - the watcher outlives its own faults; next look
                log.exception("intake supervisor could not restart an intake thread")

    def _revive(self) -> None:
        started = self.intake.revive()
        for name in started:
            self.restarted_at = self.runtime.clock.now()
            metrics.intake_restarted()
            log.error("intake thread restarted", extra={
                "intake_thread": name, "restarts": self.intake.restarts,
                "listener": self.listener, "error": self.intake.last_error})
        if started:
            self._loop.call_soon_threadsafe(self._beat_now.set)

    async def _beat(self) -> None:
        first = True
        while not self._stopping.is_set():
            await self._loop.run_in_executor(None, self._record, first)
            first = False
            try:
                await asyncio.wait_for(self._beat_now.wait(), self._every)
            except TimeoutError:
                pass
            self._beat_now.clear()

    def _record(self, first: bool) -> None:
        health = self.intake.health()
        for name in set(health.stuck) - set(self._stuck):
            metrics.worker_error("intake")
            log.error("intake thread hung", extra={
                "intake_thread": name, "listener": self.listener, "error": health.last_error})
        self._stuck = health.stuck
        beat = intake_health.Beat(
            self.listener, self.address, self.started_at, health.threads, health.alive,
            health.restarts, self.restarted_at, health.last_error)
        now = self.runtime.clock.now()
        try:
            with writer_turn(self.runtime.engine), self.runtime.sessions.begin() as session:
                if first:
                    intake_health.forget_predecessors(session, self.address, now)
                intake_health.record(session, beat, now)
        except Exception as exc:  # noqa: BLE001 - with the database down /healthz says so
            log.warning("intake heartbeat not written", extra={"error": type(exc).__name__})

    async def stop(self) -> None:
        """Restart nothing more; the heartbeat row goes (a clean stop is not a silence)."""
        self._stopping.set()
        self.intake.ended.set()
        self._beat_now.set()
        await asyncio.gather(self._beating, return_exceptions=True)
        await self._loop.run_in_executor(None, self._finish)

    def _finish(self) -> None:
        self._watcher.join()
        try:
            with writer_turn(self.runtime.engine), self.runtime.sessions.begin() as session:
                intake_health.forget(session, self.listener)
        except Exception as exc:  # noqa: BLE001 - it falls silent instead, and is replaced
            log.warning("intake heartbeat not removed", extra={"error": type(exc).__name__})
