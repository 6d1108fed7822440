"""The fault suite's fixtures: servers of its own to break. (Its `report` fixture, the one
line per test shown at the end of `pytest -q`, is in tests/conftest.py: the hooks that print
the lines must run in pytest-xdist's controller, which loads only the root conftest.)"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.reliability.servers import PrivatePostgres, PrivateRedis
from tests.support.services import unique_name


@pytest.fixture(scope="session")
def private_postgres() -> Iterator[PrivatePostgres]:
    """A PostgreSQL cluster of the suite's own, which tests may stop (never the shared one)."""
    cluster = PrivatePostgres()
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.destroy()


@pytest.fixture
def private_pg_url(private_postgres: PrivatePostgres) -> str:
    """A fresh database in the private cluster (started again if a test left it down)."""
    if not private_postgres.answers():
        private_postgres.start()
    return private_postgres.create_database(unique_name("ticketgw_f_"))


@pytest.fixture
def private_redis() -> Iterator[PrivateRedis]:
    server = PrivateRedis()
    server.start()
    try:
        yield server
    finally:
        server.destroy()
