"""A wired runtime on SQLite or PostgreSQL with a frozen clock, for service and CLI tests."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gateway.app import Runtime, build_runtime
from gateway.domain.clock import FrozenClock
from gateway.domain.settings import parse_settings
from tests.support.services import postgres_url, require_service

START = datetime(2026, 11, 19, 9, 0, tzinfo=UTC)  # a Thursday


def make_runtime(url: str, tmp_path: Path, **env: str) -> Runtime:
    environ = {"TICKETGW_DATABASE_URL": url, "TICKETGW_SECRET_KEY": "test-secret",
               "TICKETGW_OUTBOX_MAILDIR": str(tmp_path / "outbox")}
    environ.update({f"TICKETGW_{k.upper()}": v for k, v in env.items()})
    settings = parse_settings({}, environ)
    return build_runtime(settings, clock=FrozenClock(START))


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
