"""The fault suite's fixtures: servers of its own to break, and the one line per test
(`sent N, acknowledged N, stored N, duplicates N, lost N`) shown at the end of `pytest -q`."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tests.reliability.servers import PrivatePostgres, PrivateRedis
from tests.support.services import unique_name

_LINES = pytest.StashKey[list[str]]()


@pytest.fixture
def report(request: pytest.FixtureRequest) -> Callable[[str], None]:
    """Record this test's count line; every line is printed in the terminal summary, so
    CI's log shows them even with -q (captured output is not)."""
    lines = request.config.stash.setdefault(_LINES, [])

    def add(line: str) -> None:
        lines.append(f"{request.node.name}: {line}")

    return add


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter,
                            exitstatus: int, config: pytest.Config) -> None:
    lines = config.stash.get(_LINES, [])
    if lines:
        terminalreporter.write_sep("-", "fault suite")
        for line in lines:
            terminalreporter.write_line(line)


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
