"""A wired runtime on SQLite or PostgreSQL with a frozen clock, for service and CLI tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.services import postgres_url, require_service
from ticketgw.app import Runtime
from ticketgw.testing.runtime import make_runtime


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'ticketgw.db'}"
    else:
        require_service("postgres")
        with postgres_url() as url:
            yield url


@pytest.fixture
def runtime(backend_url: str, tmp_path: Path) -> Iterator[Runtime]:
    rt = make_runtime(backend_url, tmp_path)
    yield rt
    rt.close()
