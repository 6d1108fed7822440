"""Migration 0010 (the tickets(status, type) index /metrics reads), both ways."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from alembic import command
from sqlalchemy import Engine, inspect

from store.db import alembic_config, make_engine


@pytest.fixture
def engine(backend_url: str) -> Iterator[Engine]:
    engine = make_engine(backend_url)
    yield engine
    engine.dispose()


def _indexes(engine: Engine) -> set[str]:
    return {str(i["name"]) for i in inspect(engine).get_indexes("tickets")}


def test_0010_adds_the_gauges_index_and_removes_it_again(engine: Engine) -> None:
    config = alembic_config(engine)
    command.upgrade(config, "0010")
    assert "ix_tickets_status_type" in _indexes(engine)
    command.downgrade(config, "0009")
    assert "ix_tickets_status_type" not in _indexes(engine)
    assert "ix_tickets_vendor" in _indexes(engine)  # the others stay
