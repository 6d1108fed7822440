"""The fault suite's fixtures: servers of its own to break, and the one line per test
(`sent N, acknowledged N, stored N, duplicates N, lost N`) shown at the end of `pytest -q`."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tests.reliability.servers import PrivatePostgres, PrivateRedis
from tests.support.services import unique_name

_PROPERTY = "fault_suite"


@pytest.fixture
def report(request: pytest.FixtureRequest) -> Callable[[str], None]:
    """Record this test's count line; every line is printed in the terminal summary, so
    CI's log shows them even with -q (captured output is not). The line travels as a user
    property of the test's report: with pytest-xdist it is written in a worker process and
    printed by the controller."""

    def add(line: str) -> None:
        request.node.user_properties.append((_PROPERTY, f"{request.node.name}: {line}"))

    return add


# the lines seen in this process: the controller's, under pytest-xdist
_COLLECTED: list[str] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when == "teardown":
        _COLLECTED.extend(value for name, value in report.user_properties if name == _PROPERTY)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter,
                            exitstatus: int, config: pytest.Config) -> None:
    if _COLLECTED:
        terminalreporter.write_sep("-", "fault suite")
        for line in _COLLECTED:
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
