"""Build the Dramatiq broker from TICKETGW_BROKER_URL, and run workers and the sweep scheduler.

The broker is built and set as Dramatiq's global one here, before any actor is declared:
otherwise `dramatiq.get_broker()` quietly builds a RabbitMQ broker on 127.0.0.1 on first use.
The actors themselves are declared on the broker explicitly (`outbound.actors`).

`TICKETGW_BROKER_URL` may carry a `namespace` query parameter (`redis://host:6379/0?namespace=a`,
`amqp://…/vhost?namespace=a`): Redis keys and the queue names get it, so deployments (and test
runs) sharing one server never take each other's messages.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import dramatiq
import pika
import redis
from dramatiq import Broker, Worker
from dramatiq.brokers.rabbitmq import RabbitmqBroker
from dramatiq.brokers.redis import RedisBroker
from dramatiq.brokers.stub import StubBroker

from gateway.domain.settings import Settings
from gateway.services.runtime import Runtime
from outbound.actors import Actors, declare_actors

log = logging.getLogger("ticketgw.broker")

DEFAULT_NAMESPACE = "ticketgw"
OUTBOX_PERIOD = 2.0  # seconds between outbox sweeps
DEADLINE_PERIOD = 30.0  # seconds between deadline sweeps


@dataclass(frozen=True)
class BrokerSetup:
    broker: Broker
    namespace: str  # also the queue name of the outbound actors

    @property
    def embedded(self) -> bool:
        return isinstance(self.broker, StubBroker)


def split_namespace(url: str) -> tuple[str, str | None]:
    """(URL without our `namespace` parameter, the namespace or None)."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    namespace = next((v for k, v in query if k == "namespace"), None)
    rest = urlencode([(k, v) for k, v in query if k != "namespace"])
    return urlunsplit(parts._replace(query=rest)), namespace


def build_broker(settings: Settings, *, namespace: str | None = None) -> BrokerSetup:
    """A fresh broker for `settings.broker_url`, set as Dramatiq's global broker."""
    url, from_url = split_namespace(settings.broker_url)
    name = namespace or from_url or DEFAULT_NAMESPACE
    scheme = urlsplit(url).scheme
    broker: Broker
    if settings.broker_url == "embedded":
        broker = StubBroker()
        broker.emit_after("process_boot")
    elif scheme in ("redis", "rediss"):
        broker = RedisBroker(url=url, namespace=name)  # type: ignore[no-untyped-call]
    elif scheme in ("amqp", "amqps"):
        # Without publisher confirms a message the server never stored counts as sent.
        broker = RabbitmqBroker(url=url, confirm_delivery=True)
    else:
        raise ValueError(f"unsupported broker URL {settings.broker_url!r}")
    dramatiq.set_broker(broker)
    return BrokerSetup(broker, name)


def declare(runtime: Runtime, setup: BrokerSetup, **options: Any) -> Actors:
    """The outbound actors, declared on this broker explicitly (never on a global default)."""
    return declare_actors(setup.broker, runtime, queue_name=setup.namespace, **options)


class Scheduler:
    """Enqueues the outbox sweep every `outbox_period` s and the deadline sweep every
    `deadline_period` s, in a thread of its own, until stopped."""

    def __init__(self, actors: Any, *, outbox_period: float = OUTBOX_PERIOD,
                 deadline_period: float = DEADLINE_PERIOD) -> None:
        self.actors = actors
        self.outbox_period = outbox_period
        self.deadline_period = deadline_period
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ticketgw-scheduler",
                                        daemon=True)

    def start(self) -> Scheduler:
        self._thread.start()
        return self

    def _run(self) -> None:
        next_outbox = next_deadlines = time.monotonic()
        while not self._stop.is_set():
            now = time.monotonic()
            try:
                # the next tick is set before sending: a send that fails is tried again a
                # period later, not at once (a broker outage would otherwise be retried,
                # and logged, twenty times a second)
                if now >= next_deadlines:
                    next_deadlines = now + self.deadline_period
                    self.actors.sweep_deadlines.send()
                if now >= next_outbox:
                    next_outbox = now + self.outbox_period
                    self.actors.sweep_outbox.send()
            except Exception:  # a broker outage: intake is unaffected, try again next tick
                log.exception("scheduler could not enqueue a sweep")
            self._stop.wait(max(0.05, min(next_outbox, next_deadlines) - time.monotonic()))

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)


@dataclass
class Running:
    """A started worker (and perhaps a scheduler) on one broker; `stop()` ends them cleanly."""

    setup: BrokerSetup
    actors: Any
    worker: Worker | None
    scheduler: Scheduler | None = None
    _stopped: bool = field(default=False, repr=False)

    def stop(self, timeout: float = 30.0) -> None:
        if self._stopped:
            return
        self._stopped = True
        if self.scheduler is not None:
            self.scheduler.stop()
        if self.worker is not None:
            self.worker.stop(timeout=int(timeout * 1000))
        self.setup.broker.close()


def start_worker(runtime: Runtime, setup: BrokerSetup | None = None, *, threads: int = 4,
                 scheduler: bool = False, outbox_period: float = OUTBOX_PERIOD,
                 deadline_period: float = DEADLINE_PERIOD, **options: Any) -> Running:
    """A Dramatiq worker in this process on the configured (or given) broker."""
    setup = setup or build_broker(runtime.settings)
    actors = declare(runtime, setup, **options)
    worker = Worker(setup.broker, queues=actors.queues, worker_threads=threads,
                    worker_timeout=100)
    worker.start()
    running = Running(setup, actors, worker)
    if scheduler:
        running.scheduler = Scheduler(actors, outbox_period=outbox_period,
                                      deadline_period=deadline_period).start()
    return running


def start_embedded(runtime: Runtime, *, threads: int = 4, **options: Any) -> Running:
    """What `ticketgw serve` runs: the configured broker (embedded by default), an in-process
    worker and the scheduler, so outbox rows from any process go out within seconds."""
    return start_worker(runtime, threads=threads, scheduler=True, **options)


def start_scheduler(runtime: Runtime, setup: BrokerSetup | None = None, *,
                    outbox_period: float = OUTBOX_PERIOD,
                    deadline_period: float = DEADLINE_PERIOD) -> Running:
    """Only the scheduler: enqueues sweeps for the workers of a shared broker."""
    setup = setup or build_broker(runtime.settings)
    actors = declare(runtime, setup)
    scheduler = Scheduler(actors, outbox_period=outbox_period,
                          deadline_period=deadline_period).start()
    return Running(setup, actors, None, scheduler)


def broker_check_for(settings: Settings) -> Callable[[], bool]:
    """Does the configured broker answer? The embedded one always does (`/healthz`)."""
    url = split_namespace(settings.broker_url)[0]
    scheme = urlsplit(url).scheme
    if scheme in ("redis", "rediss"):
        def redis_ping() -> bool:
            client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
            try:
                return bool(client.ping())
            finally:
                client.close()
        return redis_ping
    if scheme in ("amqp", "amqps"):
        def amqp_open() -> bool:
            params = pika.URLParameters(url)
            params.socket_timeout = 2
            params.blocked_connection_timeout = 2
            params.connection_attempts = 1
            connection = pika.BlockingConnection(params)
            connection.close()
            return True
        return amqp_open
    return lambda: True
