"""Shared fixtures for the whole test suite."""

from __future__ import annotations

from collections.abc import Callable

import pytest

# --- infrastructure: real services, throw-away databases, SMTP sink, Dovecot ----------------
# (tests/support/; see its docstrings. Names: pg_admin_url, make_pg_database, pg_database_url,
# pg_module_database_url, redis_url, rabbitmq_url, rabbitmq_vhost_url, smtp_sink, dovecot.)
from tests.support.fixtures import (  # noqa: F401
    dovecot,
    make_pg_database,
    pg_admin_url,
    pg_database_url,
    pg_module_database_url,
    rabbitmq_url,
    rabbitmq_vhost_url,
    redis_url,
    smtp_sink,
)

# --- end of infrastructure block -------------------------------------------------------------
# --- store and services: a wired runtime on SQLite and PostgreSQL ---------------------------
from tests.support.runtime import backend, backend_url, migrated_url, runtime  # noqa: E402, F401
from tests.support.templates import pg_template, sqlite_template  # noqa: E402, F401

# --- the fault suite's count lines (tests/reliability/) ---------------------------------------
# `sent N, acknowledged N, stored N, duplicates N, lost N`, one per test, printed in the terminal
# summary so CI's log shows them even with -q. A line travels as a user property of the test's
# report: under pytest-xdist it is written in a worker and printed by the controller.
_FAULT_LINE = "fault_suite"
_fault_lines: list[str] = []


@pytest.fixture
def report(request: pytest.FixtureRequest) -> Callable[[str], None]:
    def add(line: str) -> None:
        request.node.user_properties.append((_FAULT_LINE, f"{request.node.name}: {line}"))

    return add


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when == "teardown":
        _fault_lines.extend(value for name, value in report.user_properties
                            if name == _FAULT_LINE)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _fault_lines:
        terminalreporter.write_sep("-", "fault suite")
        for line in _fault_lines:
            terminalreporter.write_line(line)
