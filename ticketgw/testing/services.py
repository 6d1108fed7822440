"""Reach the real PostgreSQL, Redis and RabbitMQ on loopback, and poll for conditions."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from typing import TypeVar

import pika
import psycopg
import redis
from psycopg import sql

PG_HOST = "127.0.0.1"
PG_PORT = 5432
PG_USER = "postgres"
# The maintenance database: always there, and never one we drop.
PG_ADMIN_DB = "postgres"
PG_ADMIN_URL = f"postgresql+psycopg://{PG_USER}@{PG_HOST}:{PG_PORT}/{PG_ADMIN_DB}"
PG_DB_PREFIX = "ticketgw_t_"

REDIS_HOST = "127.0.0.1"
REDIS_PORT = 6379
REDIS_URL = f"redis://{REDIS_HOST}:{REDIS_PORT}/0"

RABBITMQ_HOST = "127.0.0.1"
RABBITMQ_PORT = 5672
RABBITMQ_URL = f"amqp://guest:guest@{RABBITMQ_HOST}:{RABBITMQ_PORT}/%2F"

# CI sets this: a service that does not answer is then a failure, never a skip.
REQUIRE_ENV = "TICKETGW_TEST_REQUIRE_SERVICES"

SERVICES = ("postgres", "redis", "rabbitmq")

T = TypeVar("T")


def services_required() -> bool:
    return os.environ.get(REQUIRE_ENV, "") == "1"


def unique_name(prefix: str = "t_") -> str:
    """A name no other test (or concurrent test run) uses: for databases, queues, namespaces."""
    return f"{prefix}{secrets.token_hex(6)}"


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago (the caller binds it soon after)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def port_answers(host: str, port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_until(
    predicate: Callable[[], T],
    timeout: float = 10.0,
    interval: float = 0.02,
    message: str = "condition not met",
) -> T:
    """Poll `predicate` until it returns something truthy, and return that; fail at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise AssertionError(f"{message} (waited {timeout:.1f} s)")
        time.sleep(interval)


def _pg_conninfo(dbname: str = PG_ADMIN_DB) -> str:
    return f"host={PG_HOST} port={PG_PORT} user={PG_USER} dbname={dbname} connect_timeout=3"


def _probe_postgres() -> None:

    with psycopg.connect(_pg_conninfo(), autocommit=True) as conn:
        conn.execute("SELECT 1")


def _probe_redis() -> None:

    client = redis.Redis(
        host=REDIS_HOST, port=REDIS_PORT, socket_timeout=3, socket_connect_timeout=3
    )
    try:
        if not client.ping():
            raise RuntimeError("PING did not answer PONG")
    finally:
        client.close()


def _probe_rabbitmq() -> None:

    params = pika.URLParameters(
        RABBITMQ_URL + "?connection_attempts=1&socket_timeout=3&blocked_connection_timeout=3"
    )
    conn = pika.BlockingConnection(params)
    conn.close()


_PROBES: dict[str, Callable[[], None]] = {
    "postgres": _probe_postgres,
    "redis": _probe_redis,
    "rabbitmq": _probe_rabbitmq,
}
# Only successes are remembered: one probe per service per session, but a service that was
# down is asked again next time.
_answered: set[str] = set()


def service_problem(name: str) -> str | None:
    """None when the service answers, else why not (a sentence for the test report)."""
    if name not in _PROBES:
        raise ValueError(f"unknown service {name!r}; known: {', '.join(SERVICES)}")
    if name in _answered:
        return None
    try:
        _PROBES[name]()
    except Exception as exc:  # any failure to talk to it means the same thing here
        return f"{name} does not answer on 127.0.0.1: {type(exc).__name__}: {exc}"
    _answered.add(name)
    return None


class ServiceMissing(RuntimeError):
    """A service the caller needs does not answer (the message says which, and why)."""


def require_service(name: str) -> None:
    """Raise ServiceMissing when `name` does not answer (the test suite's own version skips
    the test instead, or fails it when CI requires services)."""
    problem = service_problem(name)
    if problem is not None:
        raise ServiceMissing(problem)


def _drop_database(name: str) -> None:

    with psycopg.connect(_pg_conninfo(), autocommit=True) as conn:
        # Terminating first makes the drop work on PostgreSQL versions without FORCE too;
        # FORCE covers connections opened in between.
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            (name,),
        )
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


@contextlib.contextmanager
def postgres_url(prefix: str = PG_DB_PREFIX, *, template: str | None = None) -> Iterator[str]:
    """Create a throw-away database, yield its SQLAlchemy URL, drop it afterwards.

    `template`: the database to copy (nobody may be connected to it); PostgreSQL's own empty
    `template1` when None."""

    require_service("postgres")
    name = unique_name(prefix)
    create = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
    if template is not None:
        create = sql.SQL("{} TEMPLATE {}").format(create, sql.Identifier(template))
    with psycopg.connect(_pg_conninfo(), autocommit=True) as conn:
        conn.execute(create)
    try:
        yield f"postgresql+psycopg://{PG_USER}@{PG_HOST}:{PG_PORT}/{name}"
    finally:
        _drop_database(name)


@contextlib.contextmanager
def rabbitmq_vhost(prefix: str = "ticketgw_t_") -> Iterator[str]:
    """Create a throw-away RabbitMQ virtual host for guest, yield its amqp URL, delete it.

    Dramatiq's RabbitMQ broker names queues after the actors' queues ("default") with no
    namespace, so concurrent test runs on one server would consume each other's messages;
    a vhost of their own keeps them apart. Needs `rabbitmqctl` on this machine (as root).
    """
    require_service("rabbitmq")
    ctl = shutil.which("rabbitmqctl")
    if ctl is None:
        raise ServiceMissing("rabbitmqctl not found: cannot create a throw-away vhost")
    name = unique_name(prefix)

    def run(*args: str) -> None:
        subprocess.run([ctl, "-q", *args], check=True, capture_output=True, timeout=60)

    run("add_vhost", name)
    try:
        run("set_permissions", "-p", name, "guest", ".*", ".*", ".*")
        yield f"amqp://guest:guest@{RABBITMQ_HOST}:{RABBITMQ_PORT}/{name}"
    finally:
        run("delete_vhost", name)
