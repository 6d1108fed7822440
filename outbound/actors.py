"""The Dramatiq actors of outbound mail, declared on the broker the wiring hands in.

Nothing here touches Dramatiq's global broker: `declare_actors` registers each function with
`dramatiq.actor(fn, broker=broker)` explicitly, so importing this module never builds one.
Actor arguments are JSON-safe ids and ISO instants, never rows.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import dramatiq
from dramatiq import Broker, Middleware
from dramatiq.broker import MessageProxy
from dramatiq.worker import WorkerThread

from gateway.domain.clock import format_instant, parse_instant
from gateway.services import metrics
from gateway.services.runtime import Runtime
from outbound import sweeps
from outbound.deliver import Deliverer, RetryPolicy
from outbound.transports import Transport

DEFAULT_QUEUE = "ticketgw"
# Rows one deliver message carries: a message costs about as much broker work as a mail
# costs database work, while a few mails in a row keep every worker thread busy all the same.
DELIVER_CHUNK = 8

log = logging.getLogger("ticketgw.outbound")


@dataclass
class Actors:
    broker: Broker
    deliverer: Deliverer
    deliver: dramatiq.Actor[Any, Any]
    sweep_outbox: dramatiq.Actor[Any, Any]
    sweep_deadlines: dramatiq.Actor[Any, Any]

    @property
    def queues(self) -> set[str]:
        return {self.deliver.queue_name, self.sweep_outbox.queue_name}


def declare_actors(broker: Broker, runtime: Runtime, *, queue_name: str = DEFAULT_QUEUE,
                   transport: Transport | None = None,
                   retry: RetryPolicy | None = None) -> Actors:
    """Register deliver, sweep_outbox and sweep_deadlines on `broker`.

    Sweeps get a queue of their own so a backlog of deliveries never delays them. Retries
    are the outbox's business (attempts, back-off, `failed`), so Dramatiq's are off.
    """
    deliverer = Deliverer(runtime, transport=transport, retry=retry)
    broker.add_middleware(_CloseOnThreadStop(deliverer))
    broker.add_middleware(_CountErrors())
    sweep_queue = f"{queue_name}_sweeps"

    # Actors return nothing: there is no result backend, and what they did is in the outbox
    # rows and the log.
    def deliver(outbox_ids: list[int], lease: str | None = None) -> None:
        at = parse_instant(lease) if lease else None
        for outbox_id in outbox_ids:
            try:
                metrics.delivered(deliverer.deliver(outbox_id, at))
            except Exception:  # worker loop: the row stays leased and is dispatched again
                log.exception("outbox delivery failed", extra={"outbox_id": outbox_id})
                metrics.worker_error("deliver")

    deliver_actor = _declare(broker, deliver, queue_name)

    def sweep_outbox() -> None:
        leased: dict[datetime, list[int]] = {}
        sweeps.sweep_outbox(runtime.sessions, runtime.clock,
                            lambda outbox_id, lease: leased.setdefault(lease, []).append(outbox_id))
        for lease, ids in leased.items():
            for start in range(0, len(ids), DELIVER_CHUNK):
                deliver_actor.send(ids[start:start + DELIVER_CHUNK], format_instant(lease))

    sweep_outbox_actor = _declare(broker, sweep_outbox, sweep_queue)

    def sweep_deadlines() -> None:
        sweeps.sweep_deadlines(runtime)
        sweep_outbox_actor.send()  # the mail the sweep just wrote goes out now, not next tick

    sweep_deadlines_actor = _declare(broker, sweep_deadlines, sweep_queue)
    return Actors(broker, deliverer, deliver_actor, sweep_outbox_actor, sweep_deadlines_actor)


class _CloseOnThreadStop(Middleware):
    """A stopping worker thread QUITs the relay connection it kept between mails."""

    def __init__(self, deliverer: Deliverer) -> None:
        self.deliverer = deliverer

    def before_worker_thread_shutdown(self, broker: Broker, thread: WorkerThread) -> None:
        self.deliverer.close()


class _CountErrors(Middleware):
    """An actor that raised (a sweep; deliveries count their own) is a worker error."""

    def after_process_message(self, broker: Broker, message: MessageProxy, *,
                              result: Any = None, exception: BaseException | None = None
                              ) -> None:
        if exception is not None:
            metrics.worker_error(message.actor_name)


def _declare(broker: Broker, fn: Callable[..., Any], queue_name: str) -> dramatiq.Actor[Any, Any]:
    """One actor on this broker, named after the function (never the global broker)."""
    return dramatiq.actor(broker=broker, actor_name=fn.__name__, queue_name=queue_name,
                          max_retries=0)(fn)
