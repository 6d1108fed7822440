"""A wired runtime on SQLite or PostgreSQL with a frozen clock, for service and CLI tests.

`backend` runs a test once on each store. `backend_url` is a new, empty database there;
`migrated_url` a copy of one already migrated (most tests: it saves the migration)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.services import postgres_url, require_service
from tests.support.templates import copy_sqlite
from ticketgw.app import Runtime
from ticketgw.testing.runtime import make_runtime


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest) -> str:
    if request.param == "postgres":
        require_service("postgres")
    return str(request.param)


@pytest.fixture
def backend_url(backend: str, tmp_path: Path) -> Iterator[str]:
    """A new, empty database: nothing migrated, no key recorded."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'ticketgw.db'}"
    else:
        with postgres_url() as url:
            yield url


@pytest.fixture
def migrated_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """A database at the newest schema revision with no rows in it."""
    if backend == "sqlite":
        yield copy_sqlite(request.getfixturevalue("sqlite_template"), tmp_path / "ticketgw.db")
    else:
        with postgres_url(template=request.getfixturevalue("pg_template")) as url:
            yield url


@pytest.fixture
def runtime(migrated_url: str, tmp_path: Path) -> Iterator[Runtime]:
    rt = make_runtime(migrated_url, tmp_path)
    yield rt
    rt.close()
