"""Keep a listener's intake threads alive: start another in the place of one that dies.

An intake thread should never die: a mail that fails is parked, and one that cannot even be
parked is answered `451`. Should one die all the same (a bug, an exception raised in it from
outside), the mail it held is answered `451` (inbound.batching) and this supervisor starts
another thread in its place, logs it and counts it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from datetime import datetime

from gateway.services import metrics
from gateway.services.runtime import Runtime
from inbound.batching import IntakeQueue

log = logging.getLogger("ticketgw.inbound")

WATCH = 1.0  # seconds between looks at the threads when none has said it ended


class IntakeSupervisor:
    """Restarts `intake`'s threads as they die (started in the listener's event loop)."""

    def __init__(self, runtime: Runtime, intake: IntakeQueue, address: str) -> None:
        self.runtime = runtime
        self.intake = intake
        self.address = address  # host:port
        self.listener = f"{address}/{os.getpid()}"
        self.restarted_at: datetime | None = None
        self._stopping = threading.Event()
        self._loop = asyncio.get_running_loop()
        self._watcher = threading.Thread(target=self._watch, name="intake-supervisor",
                                         daemon=True)
        self._watcher.start()

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

    async def stop(self) -> None:
        """Restart nothing more."""
        self._stopping.set()
        self.intake.ended.set()
        await self._loop.run_in_executor(None, self._watcher.join)
