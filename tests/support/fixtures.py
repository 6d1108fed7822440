"""Pytest fixtures over tests.support: throw-away databases, service URLs, the SMTP sink."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack

import pytest

from tests.support.dovecot import DovecotServer, dovecot
from tests.support.services import (
    PG_ADMIN_URL,
    RABBITMQ_URL,
    REDIS_URL,
    postgres_url,
    rabbitmq_vhost,
    require_service,
)
from ticketgw.testing.smtp_sink import SmtpSink

__all__ = [
    "DovecotServer",
    "dovecot",
    "make_pg_database",
    "pg_admin_url",
    "pg_database_url",
    "pg_module_database_url",
    "rabbitmq_url",
    "rabbitmq_vhost_url",
    "redis_url",
    "smtp_sink",
]


@pytest.fixture(scope="session")
def pg_admin_url() -> str:
    """URL of the maintenance database `postgres` (never dropped); PostgreSQL must answer."""
    require_service("postgres")
    return PG_ADMIN_URL


@pytest.fixture
def make_pg_database() -> Iterator[Callable[[], str]]:
    """A factory: each call creates a fresh `ticketgw_t_*` database and returns its URL.

    Every database it made is dropped when the test ends.
    """
    with ExitStack() as stack:
        yield lambda: stack.enter_context(postgres_url())


@pytest.fixture
def pg_database_url() -> Iterator[str]:
    """One throw-away database for this test."""
    with postgres_url() as url:
        yield url


@pytest.fixture(scope="module")
def pg_module_database_url() -> Iterator[str]:
    """One throw-away database shared by the tests of a module (they clean up after themselves)."""
    with postgres_url() as url:
        yield url


@pytest.fixture
def redis_url() -> str:
    """The Redis server's URL. Shared by every run: give keys and Dramatiq a unique_name()
    namespace instead of flushing the database."""
    require_service("redis")
    return REDIS_URL


@pytest.fixture
def rabbitmq_url() -> str:
    """RabbitMQ's default vhost; use unique queue names, or rabbitmq_vhost_url."""
    require_service("rabbitmq")
    return RABBITMQ_URL


@pytest.fixture(scope="session")
def rabbitmq_vhost_url() -> Iterator[str]:
    """A throw-away vhost for this test session (about 2.5 s to create and delete)."""
    with rabbitmq_vhost() as url:
        yield url


@pytest.fixture
def smtp_sink() -> Iterator[SmtpSink]:
    """A real SMTP server on 127.0.0.1:<sink.port> that keeps every mail it accepts."""
    sink = SmtpSink().start()
    try:
        yield sink
    finally:
        sink.stop()
